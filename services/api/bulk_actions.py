"""/bulk-actions and /exports: bulk actions over contacts (specs 002 and 003).

An action is recorded here with its plan (all at once, scheduled, or drip) and the time of its
first batch; the scheduler releases the batches. Edits, pause, resume and cancel lock the
action's row, the same row the scheduler locks to release a batch, so they take effect before
the next batch and never in the middle of one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from services.api import cursors
from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.campaign_access import authorized
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import drip, flows
from shared.domain.drip import ActionStatus, BulkActionType, ContactFilter, Mode, Plan, Refusal
from shared.domain.moments import Moment
from shared.domain.permissions import Action, Ownership, can_view
from shared.domain.windows import Window

BULK_ACTIONS = Queries.load(Path(__file__).with_suffix(".sql"))
# The sending account must be one the caller sees, as telegram_accounts.py decides (get).
TELEGRAM_ACCOUNTS = Queries.load(Path(__file__).with_name("telegram_accounts.sql"))

router = APIRouter(tags=["bulk actions"])

MAX_CONTACT_IDS = 100_000
EXPORT_PAGE = 20  # chunks read per round trip while streaming an export
UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


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


class AddToCampaign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    campaign_id: UUID


class SendMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    telegram_account_id: UUID
    text: str = Field(min_length=1, max_length=4096)


class AddTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Tag] = Field(min_length=1, max_length=50)


class RemoveTags(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tags: list[Tag] | None = Field(default=None, min_length=1, max_length=50)
    all: bool = False

    @model_validator(mode="after")
    def _which(self) -> RemoveTags:
        if (self.tags is None) == (not self.all):
            raise ValueError("give tags to remove, or all: true, not both")
        return self


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


PARAMS: dict[BulkActionType, type[BaseModel]] = {
    BulkActionType.ADD_TO_CAMPAIGN: AddToCampaign,
    BulkActionType.SEND_MESSAGE: SendMessage,
    BulkActionType.ADD_TAGS: AddTags,
    BulkActionType.REMOVE_TAGS: RemoveTags,
    BulkActionType.DELETE_CONTACTS: NoParams,
    BulkActionType.EXPORT_CONTACTS: NoParams,
}
Requestable = Literal[
    "add_to_campaign",
    "send_message",
    "add_tags",
    "remove_tags",
    "delete_contacts",
    "export_contacts",
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
        if (self.contact_ids is None) == (self.filter is None):
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


class BulkAction(BaseModel):
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
    total: int
    processed: int
    success_count: int
    skipped_count: int
    error_count: int
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
    contact_id: UUID
    status: str
    code: str | None
    message: str | None
    batch_number: int | None
    processed_at: datetime | None
    telegram_username: str | None
    first_name: str | None
    last_name: str | None
    send_status: str | None = Field(description="send_message: the send's execution status.")
    send_error: str | None


class BulkActionItemPage(BaseModel):
    items: list[BulkActionItem]
    next_cursor: str | None


class OutcomeCount(BaseModel):
    status: str
    code: str | None
    contacts: int


class BulkActionStatistics(BaseModel):
    total: int
    processed: int
    pending: int
    success_count: int
    skipped_count: int
    error_count: int
    batches: int
    by_outcome: list[OutcomeCount]
    sends: dict[str, int] | None = Field(
        default=None, description="send_message: executions by status (completed = sent)."
    )


@router.post(
    "/bulk-actions",
    status_code=201,
    response_model=BulkAction,
    summary="Start a bulk action over contacts",
)
async def create_action(
    body: BulkActionCreate, who: CurrentPrincipal, request: Request
) -> BulkAction:
    service = request.app.state.service
    now = service.clock.now()
    kind = BulkActionType(body.action)
    params = _params(kind, body.params)
    plan = _plan(body.mode, body.start_at, body.drip)
    action_id = uuid4()
    async with pool(request).acquire() as connection, connection.transaction():
        await _check_params(connection, who, kind, params)
        await connection.execute(
            BULK_ACTIONS["insert"],
            action_id,
            who.caller.organization_id,
            who.caller.user_id,
            body.name,
            kind.value,
            body.mode.value,
            _selection(body.contact_ids, body.filter),
            params,
            *_plan_columns(plan),
            drip.first_batch_at(plan, now),
            None,
            now,
        )
        if kind is BulkActionType.SEND_MESSAGE:
            await _carrier(connection, who, action_id, body.name, params, now)
    return await _read(request, who, action_id)


@router.get("/bulk-actions", response_model=BulkActionPage, summary="Bulk actions")
async def list_actions(
    who: CurrentPrincipal,
    request: Request,
    status: ActionStatus | None = None,
    action: BulkActionType | None = None,
    user: UUID | None = None,
    created_from: Moment | None = None,
    created_to: Moment | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
) -> BulkActionPage:
    """The caller's own actions; owners and admins see every member's while the organization's
    admin view is on (filter with `user`)."""
    caller = who.caller
    everyone = caller.sees_others  # the list's side of can_view, in SQL
    before: tuple[Any, Any] = (None, None)
    if cursor:
        position = cursors.decode(cursor, cursors.CreatedPosition)
        before = (position.c, position.i)
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(
            BULK_ACTIONS["list"],
            caller.organization_id,
            caller.user_id,
            everyone,
            status.value if status else None,
            action.value if action else None,
            user,
            created_from,
            created_to,
            *before,
            limit + 1,
        )
    days = request.app.state.service.settings.contact_restore_days
    items = [BulkAction.from_row(r, days) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = cursors.encode(c=items[-1].created_at.isoformat(), i=items[-1].id)
    return BulkActionPage(items=items, next_cursor=next_cursor)


@router.get("/bulk-actions/{action_id}", response_model=BulkAction, summary="A bulk action")
async def get_action(action_id: UUID, who: CurrentPrincipal, request: Request) -> BulkAction:
    return await _read(request, who, action_id)


@router.patch(
    "/bulk-actions/{action_id}",
    response_model=BulkAction,
    summary="Edit a bulk action (spec 002 rules)",
)
async def update_action(
    action_id: UUID, body: BulkActionPatch, who: CurrentPrincipal, request: Request
) -> BulkAction:
    service = request.app.state.service
    now = service.clock.now()
    fields = body.model_fields_set
    async with pool(request).acquire() as connection, connection.transaction():
        await _read(request, who, action_id, connection)
        row = await connection.fetchrow(BULK_ACTIONS["lock"], action_id)
        assert row is not None
        refusal = drip.edit_refusal(ActionStatus(row["status"]), row["batches"] > 0, set(fields))
        if refusal is not None:
            raise Problem(409, refusal.code, "Cannot edit this bulk action", refusal.detail)
        kind = BulkActionType(row["action"])
        selection = row["selection"]
        if {"contact_ids", "filter"} & fields:
            if (body.contact_ids is None) == (body.filter is None):
                raise invalid([field_error("contact_ids", "give either contact_ids or filter")])
            selection = _selection(body.contact_ids, body.filter)
        params = row["params"]
        if body.params is not None:
            params = _params(kind, body.params)
            await _check_params(connection, who, kind, params)
        plan = _edited_plan(row, body)
        next_at = row["next_batch_at"]
        if row["batches"] == 0 and row["status"] != ActionStatus.CANCELLED:
            next_at = drip.first_batch_at(plan, now)
        await connection.execute(
            BULK_ACTIONS["update"],
            action_id,
            body.name or row["name"],
            selection,
            params,
            plan.mode.value,
            *_plan_columns(plan),
            next_at,
            now,
        )
    return await _read(request, who, action_id)


@router.post("/bulk-actions/{action_id}/pause", response_model=BulkAction, summary="Pause")
async def pause_action(action_id: UUID, who: CurrentPrincipal, request: Request) -> BulkAction:
    return await _control(request, who, action_id, lambda s, _: drip.pause(s))


@router.post("/bulk-actions/{action_id}/resume", response_model=BulkAction, summary="Resume")
async def resume_action(action_id: UUID, who: CurrentPrincipal, request: Request) -> BulkAction:
    return await _control(request, who, action_id, drip.resume)


@router.post("/bulk-actions/{action_id}/cancel", response_model=BulkAction, summary="Cancel")
async def cancel_action(action_id: UUID, who: CurrentPrincipal, request: Request) -> BulkAction:
    return await _control(request, who, action_id, lambda s, _: drip.cancel(s))


@router.post(
    "/bulk-actions/{action_id}/restore",
    status_code=201,
    response_model=BulkAction,
    summary="Restore the contacts a delete action deleted",
)
async def restore_action(action_id: UUID, who: CurrentPrincipal, request: Request) -> BulkAction:
    """Creates a restore_contacts action: the contacts come back, with their campaign
    memberships where the campaign still exists."""
    service = request.app.state.service
    now = service.clock.now()
    source = await _read(request, who, action_id)
    if source.action != BulkActionType.DELETE_CONTACTS:
        raise Problem(
            409, "not_restorable", "Cannot restore", "only a delete_contacts action can be restored"
        )
    if source.restored_by is not None:
        raise Problem(
            409,
            "already_restored",
            "Cannot restore",
            f"bulk action {source.restored_by} restores it already",
        )
    if source.restorable_until is None or source.success_count == 0:
        raise Problem(
            409, "nothing_to_restore", "Cannot restore", "the action has deleted no contacts yet"
        )
    if now > source.restorable_until:
        raise Problem(
            409,
            "restore_period_over",
            "Cannot restore",
            f"deleted contacts can be restored until {source.restorable_until}",
        )
    restore_id = uuid4()
    plan = Plan(Mode.ALL_AT_ONCE)
    async with pool(request).acquire() as connection, connection.transaction():
        await connection.execute(
            BULK_ACTIONS["insert"],
            restore_id,
            who.caller.organization_id,
            who.caller.user_id,
            f"Restore: {source.name}"[:200],
            BulkActionType.RESTORE_CONTACTS.value,
            Mode.ALL_AT_ONCE.value,
            {"restore_of": str(action_id)},
            {},
            *_plan_columns(plan),
            now,
            action_id,
            now,
        )
    return await _read(request, who, restore_id)


@router.get(
    "/bulk-actions/{action_id}/items",
    response_model=BulkActionItemPage,
    summary="Each contact's outcome",
)
async def list_items(
    action_id: UUID,
    who: CurrentPrincipal,
    request: Request,
    status: Literal["pending", "succeeded", "skipped", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: str | None = None,
) -> BulkActionItemPage:
    await _read(request, who, action_id)
    after = cursors.decode(cursor, cursors.IdPosition).i if cursor else None
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(BULK_ACTIONS["items"], action_id, status, after, limit + 1)
    items = [BulkActionItem.model_validate(dict(r)) for r in rows[:limit]]
    next_cursor = cursors.encode(i=items[-1].contact_id) if len(rows) > limit else None
    return BulkActionItemPage(items=items, next_cursor=next_cursor)


@router.get(
    "/bulk-actions/{action_id}/statistics",
    response_model=BulkActionStatistics,
    summary="Success and error counts",
)
async def statistics(
    action_id: UUID, who: CurrentPrincipal, request: Request
) -> BulkActionStatistics:
    action = await _read(request, who, action_id)
    async with pool(request).acquire() as connection:
        codes = await connection.fetch(BULK_ACTIONS["outcome_codes"], action_id)
        sends = None
        if action.action == BulkActionType.SEND_MESSAGE:
            sends = {
                r["status"]: r["contacts"]
                for r in await connection.fetch(BULK_ACTIONS["send_statuses"], action_id)
            }
    return BulkActionStatistics(
        total=action.total,
        processed=action.processed,
        pending=sum(r["contacts"] for r in codes if r["status"] == "pending"),
        success_count=action.success_count,
        skipped_count=action.skipped_count,
        error_count=action.error_count,
        batches=action.batches,
        by_outcome=[OutcomeCount.model_validate(dict(r)) for r in codes],
        sends=sends,
    )


@router.get(
    "/exports/{export_id}",
    summary="Download an export (CSV)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def download_export(
    export_id: UUID, who: CurrentPrincipal, request: Request
) -> StreamingResponse:
    action = await _read(request, who, export_id)
    if action.action != BulkActionType.EXPORT_CONTACTS:
        raise not_found("export")
    now = request.app.state.service.clock.now()
    if action.export_url is None:
        raise Problem(
            409,
            "export_not_ready",
            "Not ready",
            "the export is still being written; try again when the action completes",
        )
    if action.export_expires_at is not None and now > action.export_expires_at:
        raise Problem(410, "export_expired", "Gone", "exports are kept for 30 days")
    database = pool(request)

    async def chunks() -> AsyncIterator[bytes]:
        # A page of chunks per round trip: memory stays flat however large the file.
        last = -1
        while True:
            async with database.acquire() as connection:
                page = await connection.fetch(
                    BULK_ACTIONS["export_chunks"], export_id, last, EXPORT_PAGE
                )
            for row in page:
                yield bytes(row["data"])
            if len(page) < EXPORT_PAGE:
                return
            last = page[-1]["seq"]

    filename = f"contacts-{export_id}.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def _control(
    request: Request,
    who: Principal,
    action_id: UUID,
    rule: Any,
) -> BulkAction:
    now = request.app.state.service.clock.now()
    async with pool(request).acquire() as connection, connection.transaction():
        await _read(request, who, action_id, connection)
        row = await connection.fetchrow(BULK_ACTIONS["lock"], action_id)
        assert row is not None
        outcome = rule(ActionStatus(row["status"]), row["batches"] > 0)
        if isinstance(outcome, Refusal):
            raise Problem(409, outcome.code, "Not possible now", outcome.detail)
        await connection.execute(BULK_ACTIONS["set_status"], action_id, outcome.value, now)
        if outcome is ActionStatus.CANCELLED:
            skipped = await connection.execute(BULK_ACTIONS["skip_pending"], action_id, now)
            count = int(skipped.rsplit(" ", 1)[1])
            await connection.execute(BULK_ACTIONS["count_skipped"], action_id, count)
    return await _read(request, who, action_id)


async def _read(
    request: Request, who: Principal, action_id: UUID, connection: DbConnection | None = None
) -> BulkAction:
    """The action if the caller may see it, by the campaigns' rule (it names the creator's
    contacts and campaigns): its creator, or an owner or admin of its organization while admin
    view is on; 404 otherwise. Every read and change of an action or export starts here."""
    if connection is None:
        async with pool(request).acquire() as fresh:
            row = await fresh.fetchrow(BULK_ACTIONS["get"], action_id)
    else:
        row = await connection.fetchrow(BULK_ACTIONS["get"], action_id)
    if row is None or not can_view(
        who.caller, Ownership(row["created_by"], row["organization_id"])
    ):
        raise not_found("bulk_action")
    return BulkAction.from_row(row, request.app.state.service.settings.contact_restore_days)


def _params(kind: BulkActionType, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        model = TypeAdapter(PARAMS[kind]).validate_python(raw)
    except ValidationError as exc:
        raise invalid(
            [
                field_error(
                    ".".join(["params", *(str(p) for p in error["loc"])]),
                    error["msg"],
                    error["type"],
                )
                for error in exc.errors()
            ]
        ) from None
    return json.loads(model.model_dump_json(exclude_defaults=False))  # type: ignore[no-any-return]


async def _check_params(
    connection: DbConnection, who: Principal, kind: BulkActionType, params: dict[str, Any]
) -> None:
    """What the action points at must be the caller's to use: 404/403 as for the thing itself."""
    if kind is BulkActionType.ADD_TO_CAMPAIGN:
        campaign = await authorized(
            connection, who, UUID(params["campaign_id"]), Action.ADD_CONTACTS
        )
        if campaign["deleted_at"] is not None:
            raise Problem(
                409,
                "campaign_deleted",
                "Campaign deleted",
                "contacts cannot be added to a deleted campaign",
            )
    if kind is BulkActionType.SEND_MESSAGE:
        account = await connection.fetchrow(
            TELEGRAM_ACCOUNTS["get"],
            UUID(params["telegram_account_id"]),
            who.caller.organization_id,
            who.caller.user_id,
        )
        if account is None:
            raise not_found("telegram_account")
        _, problems = flows.validate(_message_flow(params["text"]))
        if problems:
            raise invalid([field_error("params.text", p.message) for p in problems])


def _message_flow(text: str) -> dict[str, Any]:
    return {
        "start": "message",
        "nodes": [
            {"id": "message", "type": "send_message", "text": text},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "message", "to": "end"}],
    }


async def _carrier(
    connection: DbConnection,
    who: Principal,
    action_id: UUID,
    name: str,
    params: dict[str, Any],
    now: datetime,
) -> None:
    await connection.execute(
        BULK_ACTIONS["carrier"],
        who.caller.organization_id,
        who.caller.user_id,
        f"Bulk message: {name}"[:200],
        UUID(params["telegram_account_id"]),
        _message_flow(params["text"]),
        action_id,
        now,
    )


def _selection(contact_ids: list[UUID] | None, selection: ContactFilter | None) -> dict[str, Any]:
    if contact_ids is not None:
        return {"contact_ids": [str(i) for i in dict.fromkeys(contact_ids)]}
    assert selection is not None
    return {"filter": json.loads(selection.model_dump_json(exclude_none=True))}


def _plan(mode: Mode, start_at: datetime | None, settings: DripSettings | None) -> Plan:
    if mode is not Mode.DRIP:
        return Plan(mode, start_at=start_at)
    assert settings is not None
    window = Window(
        settings.timezone,
        frozenset(settings.allowed_days or range(1, 8)),
        settings.window_start,
        settings.window_end,
    )
    return Plan(
        mode,
        settings.start_at,
        settings.batch_size,
        timedelta(seconds=settings.every * UNIT_SECONDS[settings.unit]),
        window,
    )


def _plan_columns(plan: Plan) -> tuple[Any, ...]:
    """batch_size, interval_seconds, allowed_days, window_start, window_end, timezone, start_at."""
    window = plan.window
    return (
        plan.batch_size,
        int(plan.every.total_seconds()) if plan.every else None,
        sorted(window.days) if window else None,
        window.start if window else None,
        window.end if window else None,
        window.timezone if window else "UTC",
        plan.start_at,
    )


def _edited_plan(row: Any, body: BulkActionPatch) -> Plan:
    """The action's plan with the patch applied; 422 if the result is not a plan."""
    mode = Mode(row["mode"])
    start_at = body.start_at if body.start_at is not None else row["start_at"]
    if mode is not Mode.DRIP:
        return Plan(mode, start_at=start_at)
    every = row["interval_seconds"]
    if body.every is not None or body.unit is not None:
        if body.every is None or body.unit is None:
            raise invalid([field_error("every", "give every and unit together")])
        every = body.every * UNIT_SECONDS[body.unit]
    try:
        settings = DripSettings(
            batch_size=body.batch_size or row["batch_size"],
            every=1,
            unit="minutes",
            allowed_days=body.allowed_days
            if body.allowed_days is not None
            else row["allowed_days"],
            window_start=body.window_start
            if "window_start" in body.model_fields_set
            else row["window_start"],
            window_end=body.window_end
            if "window_end" in body.model_fields_set
            else row["window_end"],
            timezone=body.timezone or row["timezone"],
            start_at=start_at,
        )
    except ValidationError as exc:
        raise invalid(
            [
                field_error(".".join(str(p) for p in e["loc"]) or "drip", e["msg"])
                for e in exc.errors()
            ]
        ) from None
    plan = _plan(mode, None, settings)
    return Plan(mode, start_at, plan.batch_size, timedelta(seconds=every), plan.window)
