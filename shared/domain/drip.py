"""Bulk actions over contacts (specs 002 and 003): when their batches are released, what may be
edited in which status, and how pause, resume and cancel move them. Pure functions.

Modes: all at once (every contact now, in chunks), scheduled (every contact at a time) and drip
(`batch_size` contacts per batch, one batch every `every`, only on allowed days and inside an
optional daily window, in a time zone, from a start time). "Repeat after" means run every: the
next batch is due `every` after the previous one was due, then moved to the next allowed moment.
A scheduler that was away does not catch up with a burst: a batch whose time has long passed is
released now and the next one `every` later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from shared.domain.windows import Window, next_allowed, wall_clock_instant


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
class Plan:
    mode: Mode
    start_at: datetime | None = None  # scheduled: required; drip: optional (now)
    batch_size: int | None = None  # drip only
    every: timedelta | None = None  # drip only
    window: Window | None = None  # drip only: days, optional daily window, time zone

    def __post_init__(self) -> None:
        if self.mode is Mode.SCHEDULED and self.start_at is None:
            raise ValueError("a scheduled action needs start_at")
        if self.mode is Mode.DRIP:
            if self.batch_size is None or self.batch_size < 1:
                raise ValueError("drip mode needs a batch size of at least 1")
            if self.every is None or self.every <= timedelta(0):
                raise ValueError("drip mode needs a positive interval")
            if self.window is None:
                raise ValueError("drip mode needs a window (at least a time zone)")

    @property
    def batch_limit(self) -> int:
        return self.batch_size if self.mode is Mode.DRIP and self.batch_size else CHUNK


def first_batch_at(plan: Plan, now: datetime) -> datetime:
    """When the first batch is due."""
    if plan.mode is Mode.ALL_AT_ONCE:
        return now
    start = plan.start_at or now
    if plan.mode is Mode.SCHEDULED:
        return start
    assert plan.window is not None
    return next_allowed(plan.window, start)


def next_batch_at(plan: Plan, due: datetime, now: datetime) -> datetime:
    """When the batch after the one that was due at `due` is due (released at `now`)."""
    if plan.mode is not Mode.DRIP:
        return now  # the next chunk follows at once
    assert plan.every is not None
    assert plan.window is not None
    following = _later(due, plan.every, plan.window.timezone)
    if following <= now:
        following = _later(now, plan.every, plan.window.timezone)  # no burst of missed batches
    return next_allowed(plan.window, following)


def _later(moment: datetime, every: timedelta, timezone: str) -> datetime:
    """Hours and minutes are elapsed time; whole days are calendar days, so "every day" keeps
    its wall-clock time across a daylight-saving change."""
    if every % timedelta(days=1):
        return moment.astimezone(UTC) + every  # in UTC: aware arithmetic is wall-clock time
    local = moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return wall_clock_instant(local + every, timezone)


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
