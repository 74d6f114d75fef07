from __future__ import annotations

import pytest

from shared.domain.executions import (
    BETWEEN_STEPS,
    FINISHED,
    IN_MOTION,
    UNFINISHED,
    ExecutionStatus,
)

S = ExecutionStatus


@pytest.mark.parametrize(
    ("status", "unfinished", "in_motion", "between_steps"),
    [
        (S.PENDING, True, True, True),
        (S.RUNNING, True, True, False),
        (S.WAITING, True, True, True),
        (S.PAUSED, True, False, False),
        (S.COMPLETED, False, False, False),
        (S.FAILED, False, False, False),
        (S.CANCELLED, False, False, False),
    ],
)
def test_each_status_belongs_to_its_sets(
    status: ExecutionStatus, unfinished: bool, in_motion: bool, between_steps: bool
) -> None:
    assert (status in UNFINISHED) is unfinished
    assert (status in FINISHED) is not unfinished
    assert (status in IN_MOTION) is in_motion
    assert (status in BETWEEN_STEPS) is between_steps


def test_the_sets_nest() -> None:
    assert BETWEEN_STEPS < IN_MOTION < UNFINISHED
    assert set(ExecutionStatus) == UNFINISHED | FINISHED
    assert not UNFINISHED & FINISHED


def test_the_statuses_are_the_schemas_and_compare_as_text() -> None:
    assert [s.value for s in ExecutionStatus] == [
        "pending",
        "running",
        "waiting",
        "paused",
        "completed",
        "failed",
        "cancelled",
    ]
    assert "waiting" in BETWEEN_STEPS
