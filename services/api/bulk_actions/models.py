"""The shapes of /bulk-actions: request bodies and responses, with their cross-field checks."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.domain.bulk_actions import ActionStatus, BulkActionType, ContactFilter, Mode
from shared.domain.moments import Moment
from shared.domain.progress import Progress

MAX_CONTACT_IDS = 100_000
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
# An opportunity's lead value: in the account's currency, two decimals.
Money = Annotated[Decimal, Field(ge=0, lt=Decimal("1e14"), decimal_places=2)]


class DripSettings(BaseModel):
    """Drip mode: `batch_size` contacts every `every` `unit`, on `allowed_days` (ISO weekdays,
    Monday = 1), inside the optional daily window, in `timezone`, from `start_at` (now)."""

    model_config = ConfigDict(extra="forbid")
    batch_size: int = Field(ge=1, le=MAX_CONTACT_IDS)
    every: int = Field(ge=1, le=10_000)
    unit: Literal["minutes", "hours", "days"]
    allowed_days: list[int] | None = Field(default=None, min_length=1, max_length=7)
    window_start: time | None = None
    window_end: time | None = None
    timezone: str = "UTC"
    start_at: Moment | None = None

    @field_validator("allowed_days")
    @classmethod
    def _days(cls, days: list[int] | None) -> list[int] | None:
        if days is not None and not set(days) <= set(range(1, 8)):
            raise ValueError("days are ISO weekdays, 1 (Monday) to 7 (Sunday)")
        return sorted(set(days)) if days is not None else None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone

    @model_validator(mode="after")
    def _window(self) -> DripSettings:
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("give both window_start and window_end, or neither")
        if self.window_start is not None and self.window_start == self.window_end:
            raise ValueError("window_start and window_end must differ")
        return self


Requestable = Literal[
    "add_to_campaign",
    "send_message",
    "add_tags",
    "remove_tags",
    "delete_contacts",
    "export_contacts",
    "add_to_company",
    "remove_from_company",
    "upsert_opportunities",
    "import_contacts",
]


class BulkActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name = Field(description="For tracking in the list of bulk actions.")
    action: Requestable
    contact_ids: list[UUID] | None = Field(default=None, min_length=1, max_length=MAX_CONTACT_IDS)
    filter: ContactFilter | None = Field(
        default=None, description="Select all: every contact that matches."
    )
    params: dict[str, Any] = Field(default_factory=dict)
    mode: Mode = Mode.ALL_AT_ONCE
    start_at: Moment | None = Field(default=None, description="scheduled mode: when.")
    drip: DripSettings | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BulkActionCreate:
        if self.action == "import_contacts":
            if self.contact_ids is not None or self.filter is not None:
                raise ValueError("an import's contacts are its upload's rows (params.import_id)")
        elif (self.contact_ids is None) == (self.filter is None):
            raise ValueError("give either contact_ids or filter, not both and not neither")
        if (self.mode is Mode.DRIP) != (self.drip is not None):
            raise ValueError("drip settings go with mode drip, and only with it")
        if (self.mode is Mode.SCHEDULED) != (self.start_at is not None):
            raise ValueError("start_at goes with mode scheduled, and only with it")
        return self


class BulkActionPatch(BaseModel):
    """Queued: anything. Processing (or paused after a batch): batch_size only."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    contact_ids: list[UUID] | None = Field(default=None, min_length=1, max_length=MAX_CONTACT_IDS)
    filter: ContactFilter | None = None
    params: dict[str, Any] | None = None
    start_at: Moment | None = None
    batch_size: int | None = Field(default=None, ge=1, le=MAX_CONTACT_IDS)
    every: int | None = Field(default=None, ge=1, le=10_000)
    unit: Literal["minutes", "hours", "days"] | None = None
    allowed_days: list[int] | None = None
    window_start: time | None = None
    window_end: time | None = None
    timezone: str | None = None


class Schedule(BaseModel):
    mode: Mode
    start_at: datetime | None
    batch_size: int | None
    every_seconds: int | None
    allowed_days: list[int] | None
    window_start: time | None
    window_end: time | None
    timezone: str


class BulkAction(Progress):
    id: UUID
    name: str
    action: str
    status: ActionStatus
    created_by: UUID
    created_by_email: str
    organization_id: UUID | None
    selection: dict[str, Any]
    params: dict[str, Any]
    schedule: Schedule
    next_batch_at: datetime | None
    batches: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    restore_of: UUID | None = None
    restored_by: UUID | None = None
    restorable_until: datetime | None = None
    export_url: str | None = None
    export_expires_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any, restore_days: int) -> BulkAction:
        values = dict(row)
        values["schedule"] = Schedule(
            mode=row["mode"],
            start_at=row["start_at"],
            batch_size=row["batch_size"],
            every_seconds=row["interval_seconds"],
            allowed_days=row["allowed_days"],
            window_start=row["window_start"],
            window_end=row["window_end"],
            timezone=row["timezone"],
        )
        values["restore_of"] = row["source_action_id"]
        finished = row["completed_at"] or row["cancelled_at"] or row["last_batch_at"]
        if row["action"] == BulkActionType.DELETE_CONTACTS and finished is not None:
            values["restorable_until"] = finished + timedelta(days=restore_days)
        if row["action"] == BulkActionType.EXPORT_CONTACTS and row["export_completed_at"]:
            values["export_url"] = f"/exports/{row['id']}"
            values["export_expires_at"] = row["export_expires_at"]
        return cls.model_validate(values)


class BulkActionPage(BaseModel):
    items: list[BulkAction]
    next_cursor: str | None


class BulkActionItem(BaseModel):
    contact_id: UUID | None = Field(
        description="import_contacts: the contact the row created or updated (none for a row"
        " that failed)."
    )
    line: int | None = Field(
        default=None, description="import_contacts: the row's line in the file (header: 1)."
    )
    details: dict[str, Any] | None = Field(
        default=None,
        description="What the action recorded of the item: import_contacts, what else the row"
        " did or each field's error; merge_contacts, both ids, the campaigns touched and the"
        " executions, messages and conversations moved.",
    )
    status: str
    code: str | None
    message: str | None
    batch_number: int | None
    processed_at: datetime | None
    telegram_username: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    send_status: str | None = Field(
        default=None, description="send_message: the send's execution status."
    )
    send_error: str | None = None


class BulkActionItemPage(BaseModel):
    items: list[BulkActionItem]
    next_cursor: str | None


class OutcomeCount(BaseModel):
    status: str
    code: str | None
    contacts: int


class BulkActionStatistics(Progress):
    pending: int
    batches: int
    by_outcome: list[OutcomeCount]
    sends: dict[str, int] | None = Field(
        default=None, description="send_message: executions by status (completed = sent)."
    )
