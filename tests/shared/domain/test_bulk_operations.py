"""Bulk operation outcomes (spec 000), one row per status, action and permission case."""

from __future__ import annotations

import pytest

from shared.domain.accounts import AccountHealth
from shared.domain.bulk_operations import BulkAction, ItemResult, outcome
from shared.domain.campaigns import (
    CampaignState,
    CampaignStatus,
    ExecutionEffect,
    LaunchReadiness,
    LaunchType,
)
from shared.domain.permissions import Decision

S, A = CampaignStatus, BulkAction
OK, SKIP, FAIL = ItemResult.SUCCEEDED, ItemResult.SKIPPED, ItemResult.FAILED
READY = LaunchReadiness(account=AccountHealth.ACTIVE, contacts=3, flow_problems=0)
NO_CONTACTS = LaunchReadiness(account=AccountHealth.ACTIVE, contacts=0, flow_problems=0)


def state(status: CampaignStatus, enabled: bool = True, deleted: bool = False) -> CampaignState:
    return CampaignState(status, enabled, LaunchType.MANUAL, deleted)


# action, status, enabled, expected result, code
CASES = [
    # Enable and disable: any status; already so is a skip.
    *[(A.ENABLE, s, False, OK, "enabled") for s in S],
    *[(A.ENABLE, s, True, SKIP, "already_enabled") for s in S],
    *[(A.DISABLE, s, True, OK, "disabled") for s in S],
    *[(A.DISABLE, s, False, SKIP, "already_disabled") for s in S],
    # Launch: draft and paused only, and only when the requirements are met.
    (A.LAUNCH, S.DRAFT, True, OK, "launched"),
    (A.LAUNCH, S.PAUSED, True, OK, "launched"),
    (A.LAUNCH, S.DRAFT, False, FAIL, "launch_requirements_unmet"),
    *[(A.LAUNCH, s, True, SKIP, "invalid_status") for s in S if s not in (S.DRAFT, S.PAUSED)],
    # Stop: active, paused, waiting and failed.
    (A.STOP, S.ACTIVE, True, OK, "stopped"),
    (A.STOP, S.PAUSED, True, OK, "stopped"),
    (A.STOP, S.PAUSED, False, OK, "stopped"),
    # A waiting campaign is stopped in bulk too (issue 16, spec 004).
    (A.STOP, S.SCHEDULED, True, OK, "stopped"),
    (A.STOP, S.SCHEDULED, False, OK, "stopped"),
    # A failed campaign may be relaunched or stopped (issue 16 item 2, docs/campaigns.md).
    (A.STOP, S.FAILED, True, OK, "stopped"),
    *[
        (A.STOP, s, True, SKIP, "invalid_status")
        for s in S
        if s not in (S.ACTIVE, S.PAUSED, S.SCHEDULED, S.FAILED)
    ],
    # Delete: anything but active.
    (A.DELETE, S.ACTIVE, True, SKIP, "campaign_active"),
    *[(A.DELETE, s, True, OK, "deleted") for s in S if s is not S.ACTIVE],
]


@pytest.mark.parametrize(("action", "status", "enabled", "result", "code"), CASES)
def test_status_rules(
    action: BulkAction, status: CampaignStatus, enabled: bool, result: ItemResult, code: str
) -> None:
    decided = outcome(action, state(status, enabled), Decision.ALLOWED, READY)
    assert (decided.result, decided.code) == (result, code)
    assert (decided.change is not None) == (result is OK)
    assert decided.message


@pytest.mark.parametrize("action", list(A))
def test_a_campaign_the_caller_cannot_see_is_an_error_never_a_success(action: BulkAction) -> None:
    for hidden in (
        outcome(action, None, Decision.INVISIBLE),
        outcome(action, state(S.PAUSED), Decision.INVISIBLE, READY),
        outcome(action, state(S.PAUSED, deleted=True), Decision.ALLOWED, READY),
    ):
        assert (hidden.result, hidden.code) == (FAIL, "campaign_not_found")


@pytest.mark.parametrize("action", list(A))
def test_permission_comes_before_the_status_rules(action: BulkAction) -> None:
    denied = outcome(action, state(S.COMPLETED), Decision.FORBIDDEN, READY)
    assert (denied.result, denied.code) == (FAIL, "permission_denied")


def test_what_the_changes_do_to_executions() -> None:
    stop = outcome(A.STOP, state(S.ACTIVE), Decision.ALLOWED).change
    disable = outcome(A.DISABLE, state(S.ACTIVE), Decision.ALLOWED).change
    launch = outcome(A.LAUNCH, state(S.PAUSED), Decision.ALLOWED, READY).change
    reset = outcome(A.LAUNCH, state(S.PAUSED), Decision.ALLOWED, READY, reset_completed=True).change
    assert stop is not None
    assert (stop.status, stop.executions) == (S.CANCELLED, ExecutionEffect.CANCEL)
    assert disable is not None
    assert (disable.status, disable.enabled, disable.executions) == (
        S.ACTIVE,
        False,
        ExecutionEffect.CANCEL,
    )
    assert launch is not None
    assert (launch.status, launch.executions) == (S.ACTIVE, ExecutionEffect.RESUME)
    assert reset is not None
    assert reset.executions is ExecutionEffect.RESUME_AND_RESET


def test_unmet_launch_requirements_name_each_one() -> None:
    failed = outcome(A.LAUNCH, state(S.DRAFT), Decision.ALLOWED, NO_CONTACTS)
    assert (failed.result, failed.code) == (FAIL, "launch_requirements_unmet")
    assert "no contacts" in failed.message
