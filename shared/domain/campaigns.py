"""The campaign state machine: which lifecycle command is allowed in which state, and where it
leads. Pure functions; the scheduler (the single writer of campaign status) applies them.

Foundation scope: launch. Pause, stop, enable, disable, delete and restore join this table with
the campaign-management work.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class LaunchType(StrEnum):
    NOW = "now"
    MANUAL = "manual"
    SCHEDULE = "schedule"
    RECURRING = "recurring"


@dataclass(frozen=True)
class CampaignState:
    status: CampaignStatus
    enabled: bool
    launch_type: LaunchType
    deleted: bool = False


@dataclass(frozen=True)
class Transition:
    status: CampaignStatus


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str


# Spec 001, "Launch Campaign": status draft or paused; paused executions resume.
LAUNCHABLE_FROM = frozenset({CampaignStatus.DRAFT, CampaignStatus.PAUSED})


def launch(state: CampaignState) -> Transition | Refusal:
    if state.deleted:
        return Refusal(
            "campaign_deleted", "a deleted campaign cannot be launched; restore it first"
        )
    if not state.enabled:
        return Refusal("campaign_disabled", "a disabled campaign cannot be launched; enable it")
    if state.status not in LAUNCHABLE_FROM:
        return Refusal(
            "invalid_status",
            f"a campaign can be launched from draft or paused, not from {state.status.value}",
        )
    # Spec 001: "Status changes to active (or scheduled if scheduled)"; a relaunch of a paused
    # campaign resumes at once whatever its launch type.
    waits = state.launch_type in (LaunchType.SCHEDULE, LaunchType.RECURRING)
    if waits and state.status is CampaignStatus.DRAFT:
        return Transition(CampaignStatus.SCHEDULED)
    return Transition(CampaignStatus.ACTIVE)
