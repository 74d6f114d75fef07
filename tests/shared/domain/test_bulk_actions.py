"""The bulk action rules (spec 002), one row per case: what may be edited in which status, and
how pause, resume and cancel move an action."""

from __future__ import annotations

import pytest

from shared.domain.bulk_actions import (
    ActionStatus,
    Refusal,
    cancel,
    edit_refusal,
    pause,
    resume,
)

S = ActionStatus
EDITS = [
    # status, started, fields, refusal code (None: allowed)
    (S.QUEUED, False, {"batch_size", "every", "params", "selection", "start_at"}, None),
    (S.PAUSED, False, {"params", "selection"}, None),
    (S.PROCESSING, True, {"batch_size"}, None),
    (S.PAUSED, True, {"batch_size"}, None),
    (S.PROCESSING, True, {"batch_size", "every"}, "bulk_action_started"),
    (S.PROCESSING, True, {"params"}, "bulk_action_started"),
    (S.PROCESSING, True, {"allowed_days"}, "bulk_action_started"),
    (S.PAUSED, True, {"selection"}, "bulk_action_started"),
    (S.COMPLETED, True, {"batch_size"}, "bulk_action_finished"),
    (S.CANCELLED, True, {"batch_size"}, "bulk_action_finished"),
    (S.FAILED, False, {"name"}, "bulk_action_finished"),
]


@pytest.mark.parametrize(("status", "started", "fields", "code"), EDITS)
def test_edit_rules(
    status: ActionStatus, started: bool, fields: set[str], code: str | None
) -> None:
    refusal = edit_refusal(status, started, fields)
    assert (refusal.code if refusal else None) == code


CONTROL = [
    (pause, S.QUEUED, S.PAUSED),
    (pause, S.PROCESSING, S.PAUSED),
    (pause, S.PAUSED, None),
    (pause, S.COMPLETED, None),
    (cancel, S.QUEUED, S.CANCELLED),
    (cancel, S.PROCESSING, S.CANCELLED),
    (cancel, S.PAUSED, S.CANCELLED),
    (cancel, S.CANCELLED, None),
    (cancel, S.COMPLETED, None),
]


@pytest.mark.parametrize(("rule", "status", "expected"), CONTROL)
def test_pause_and_cancel(
    rule: object, status: ActionStatus, expected: ActionStatus | None
) -> None:
    outcome = rule(status)  # type: ignore[operator]
    assert (None if isinstance(outcome, Refusal) else outcome) == expected


def test_resume_goes_back_to_where_it_was() -> None:
    assert resume(S.PAUSED, started=False) is S.QUEUED
    assert resume(S.PAUSED, started=True) is S.PROCESSING
    assert isinstance(resume(S.PROCESSING, started=True), Refusal)
