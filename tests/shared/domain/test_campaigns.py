"""The launch rules of spec 001 ("Launch Campaign"), one row per case."""

from __future__ import annotations

import pytest

from shared.domain.campaigns import (
    CampaignState,
    CampaignStatus,
    LaunchType,
    Refusal,
    Transition,
    launch,
)

S = CampaignStatus
L = LaunchType

CASES = [
    # status, enabled, launch type, deleted -> outcome (a status, or a refusal code)
    (S.DRAFT, True, L.MANUAL, False, S.ACTIVE),  # "Status changes to active"
    (S.DRAFT, True, L.NOW, False, S.ACTIVE),
    (S.DRAFT, True, L.SCHEDULE, False, S.SCHEDULED),  # "(or scheduled if scheduled)"
    (S.DRAFT, True, L.RECURRING, False, S.SCHEDULED),
    (S.PAUSED, True, L.MANUAL, False, S.ACTIVE),  # "Launch campaign again to resume"
    (S.PAUSED, True, L.SCHEDULE, False, S.ACTIVE),
    (S.ACTIVE, True, L.MANUAL, False, "invalid_status"),  # "Campaign status: draft or paused"
    (S.SCHEDULED, True, L.SCHEDULE, False, "invalid_status"),
    (S.COMPLETED, True, L.MANUAL, False, "invalid_status"),
    (S.CANCELLED, True, L.MANUAL, False, "invalid_status"),  # "must duplicate to restart"
    (S.FAILED, True, L.MANUAL, False, "invalid_status"),
    (S.DRAFT, False, L.MANUAL, False, "campaign_disabled"),  # "must be enabled"
    (S.PAUSED, False, L.MANUAL, False, "campaign_disabled"),
    (S.DRAFT, True, L.MANUAL, True, "campaign_deleted"),
]


@pytest.mark.parametrize(("status", "enabled", "launch_type", "deleted", "expected"), CASES)
def test_launch(
    status: CampaignStatus,
    enabled: bool,
    launch_type: LaunchType,
    deleted: bool,
    expected: CampaignStatus | str,
) -> None:
    outcome = launch(CampaignState(status, enabled, launch_type, deleted))
    if isinstance(expected, CampaignStatus):
        assert outcome == Transition(expected)
    else:
        assert isinstance(outcome, Refusal)
        assert outcome.code == expected
        assert outcome.detail
