"""Bulk operations over campaigns (spec 000): which campaigns an operation applies to, which it
skips, and which are errors. Pure; the scheduler applies the outcomes in batches.

A campaign the caller cannot see is an error (not found), never a success. Status rules come
first (a campaign in the wrong status is skipped with a message); permission and launch
requirements are errors; what is left is changed by the campaign state machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.domain import campaigns
from shared.domain.campaigns import (
    STOPPABLE_FROM,
    CampaignState,
    CampaignStatus,
    Change,
    LaunchReadiness,
    LaunchType,
    Refusal,
)
from shared.domain.permissions import Action, Decision, ViewMode

# A bulk launch starts drafts and resumes paused campaigns; it never runs a waiting (scheduled)
# campaign early, which only a person's run-now on that campaign does (issue 16).
BULK_LAUNCHABLE_FROM = frozenset({CampaignStatus.DRAFT, CampaignStatus.PAUSED})


class BulkAction(StrEnum):
    ENABLE = "enable"
    DISABLE = "disable"
    LAUNCH = "launch"
    STOP = "stop"
    DELETE = "delete"


PERMISSION: dict[BulkAction, Action] = {
    BulkAction.ENABLE: Action.ENABLE,
    BulkAction.DISABLE: Action.DISABLE,
    BulkAction.LAUNCH: Action.LAUNCH,
    BulkAction.STOP: Action.STOP,
    BulkAction.DELETE: Action.DELETE,
}

_DONE = {
    BulkAction.ENABLE: "enabled",
    BulkAction.DISABLE: "disabled",
    BulkAction.LAUNCH: "launched",
    BulkAction.STOP: "stopped",
    BulkAction.DELETE: "deleted",
}

_DENIED = {
    BulkAction.LAUNCH: "only the campaign's creator may launch it",
}


class BulkStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class ItemResult(StrEnum):
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"


class CampaignFilter(BaseModel):
    """The campaign list's filters and search: "select all" is every campaign that matches and
    that the caller can see in this view mode. Deleted campaigns are never selected."""

    model_config = ConfigDict(extra="forbid")
    view_mode: ViewMode = ViewMode.OWN
    status: list[CampaignStatus] | None = None
    enabled: bool | None = None
    launch_type: list[LaunchType] | None = None
    tag: str | None = Field(default=None, max_length=100)
    channel: str | None = Field(default=None, max_length=20)
    created_by: UUID | None = None
    search: str | None = Field(default=None, max_length=200)


@dataclass(frozen=True)
class ItemOutcome:
    result: ItemResult
    code: str
    message: str
    change: Change | None = None


def _skipped(code: str, message: str) -> ItemOutcome:
    return ItemOutcome(ItemResult.SKIPPED, code, message)


def _failed(code: str, message: str) -> ItemOutcome:
    return ItemOutcome(ItemResult.FAILED, code, message)


NOT_FOUND = _failed("campaign_not_found", "no such campaign, or the caller cannot see it")


def outcome(
    action: BulkAction,
    state: CampaignState | None,
    decision: Decision,
    readiness: LaunchReadiness | None = None,
    *,
    reset_completed: bool = False,
) -> ItemOutcome:
    """What the operation does to one campaign (state None: there is no such campaign)."""
    if state is None or state.deleted or decision is Decision.INVISIBLE:
        return NOT_FOUND
    if decision is Decision.FORBIDDEN:
        detail = _DENIED.get(action, f"the caller may not {action.value} another member's campaign")
        return _failed("permission_denied", detail)
    status = state.status.value
    result: Change | Refusal
    match action:
        case BulkAction.ENABLE:
            if state.enabled:
                return _skipped("already_enabled", "the campaign is already enabled")
            result = campaigns.enable(state)
        case BulkAction.DISABLE:
            if not state.enabled:
                return _skipped("already_disabled", "the campaign is already disabled")
            result = campaigns.disable(state)
        case BulkAction.LAUNCH:
            if state.status not in BULK_LAUNCHABLE_FROM:
                return _skipped(
                    "invalid_status",
                    f"only draft and paused campaigns are launched, not {status}",
                )
            assert readiness is not None
            result = campaigns.launch(state, readiness, reset_completed=reset_completed)
        case BulkAction.STOP:
            if state.status not in STOPPABLE_FROM:
                return _skipped(
                    "invalid_status",
                    f"only active, paused and scheduled campaigns are stopped, not {status}",
                )
            result = campaigns.stop(state)
        case BulkAction.DELETE:
            if state.status is CampaignStatus.ACTIVE:
                return _skipped(
                    "campaign_active", "an active campaign must be stopped before deletion"
                )
            result = campaigns.delete(state)
    if isinstance(result, Refusal):
        return _failed(result.code, result.detail)
    message = f"campaign {_DONE[action]}"
    if action is BulkAction.LAUNCH:
        message = f"campaign launched ({result.status.value})"
    return ItemOutcome(ItemResult.SUCCEEDED, _DONE[action], message, result)
