"""Bulk actions over contacts (specs 002 and 003): their types, modes and statuses, the contact
selection, what may be edited in which status, and how pause, resume and cancel move them. Pure
functions. When their batches are released is shared.domain.drip's schedule arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class BulkActionType(StrEnum):
    ADD_TO_CAMPAIGN = "add_to_campaign"
    SEND_MESSAGE = "send_message"
    ADD_TAGS = "add_tags"
    REMOVE_TAGS = "remove_tags"
    DELETE_CONTACTS = "delete_contacts"
    RESTORE_CONTACTS = "restore_contacts"
    EXPORT_CONTACTS = "export_contacts"
    ADD_TO_COMPANY = "add_to_company"
    REMOVE_FROM_COMPANY = "remove_from_company"
    UPSERT_OPPORTUNITIES = "upsert_opportunities"
    MERGE_CONTACTS = "merge_contacts"
    IMPORT_CONTACTS = "import_contacts"  # applies an upload (POST /imports): no selection


class Mode(StrEnum):
    ALL_AT_ONCE = "all_at_once"
    SCHEDULED = "scheduled"
    DRIP = "drip"


class ActionStatus(StrEnum):
    QUEUED = "queued"  # no batch released yet
    PROCESSING = "processing"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINISHED = frozenset({ActionStatus.COMPLETED, ActionStatus.CANCELLED, ActionStatus.FAILED})
# What a processing (or paused, once started) action still lets change: future batches' size.
EDITABLE_ONCE_STARTED = frozenset({"batch_size"})
# Contacts handled per transaction when a mode has no batch size of its own.
CHUNK = 1000


class ContactFilter(BaseModel):
    """Select all: every contact the caller sees that has all these tags, matches the search
    (names, username, phone), has these custom field values and belongs to the company."""

    model_config = ConfigDict(extra="forbid")
    tags: list[str] | None = Field(default=None, max_length=50)
    search: str | None = Field(default=None, max_length=200)
    custom_fields: dict[str, str] | None = None
    company_id: UUID | None = None


@dataclass(frozen=True)
class Refusal:
    code: str
    detail: str


def edit_refusal(status: ActionStatus, started: bool, fields: set[str]) -> Refusal | None:
    """Spec 002: everything while queued; only the batch quantity once batches have run (they
    are never redone: edits apply to future batches); nothing once finished."""
    if status in FINISHED:
        return Refusal("bulk_action_finished", f"a {status.value} bulk action cannot be edited")
    if not started:
        return None
    locked = sorted(fields - EDITABLE_ONCE_STARTED)
    if locked:
        return Refusal(
            "bulk_action_started",
            f"only the batch quantity can change once batches have run; not {', '.join(locked)}",
        )
    return None


def pause(status: ActionStatus) -> ActionStatus | Refusal:
    if status in (ActionStatus.QUEUED, ActionStatus.PROCESSING):
        return ActionStatus.PAUSED
    return Refusal("invalid_status", f"a {status.value} bulk action cannot be paused")


def resume(status: ActionStatus, started: bool) -> ActionStatus | Refusal:
    if status is ActionStatus.PAUSED:
        return ActionStatus.PROCESSING if started else ActionStatus.QUEUED
    return Refusal(
        "invalid_status", f"only a paused bulk action can be resumed, not {status.value}"
    )


def cancel(status: ActionStatus) -> ActionStatus | Refusal:
    if status in FINISHED:
        return Refusal("invalid_status", f"a {status.value} bulk action cannot be cancelled")
    return ActionStatus.CANCELLED


def restorable_until(completed_at: datetime, restore_days: int) -> datetime:
    return completed_at + timedelta(days=restore_days)
