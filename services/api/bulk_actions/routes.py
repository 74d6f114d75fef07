"""/bulk-actions: bulk actions over contacts (specs 002 and 003).

A bulk action is scheduled work: a row plus a periodic job (docs/architecture.md, "Request
and reply"). It is recorded here with its plan (all at once, scheduled, or drip) and the time
of its first batch; the scheduler's job releases the batches. Edits, pause, resume and cancel
change that schedule: they lock the action's row, the same row the scheduler locks to release
a batch, so they take effect before the next batch and never in the middle of one, and emit
bulk_action.changed in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query

from services.api import cursors
from services.api.auth import CurrentPrincipal, Principal
from services.api.bulk_actions import parameters
from services.api.bulk_actions.models import (
    BulkAction,
    BulkActionCreate,
    BulkActionItem,
    BulkActionItemPage,
    BulkActionPage,
    BulkActionPatch,
    BulkActionStatistics,
    OutcomeCount,
)
from services.api.deps import CurrentClock, CurrentSettings, Database, Pool
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db.pool import DbConnection
from shared.db.rows import BulkActionRow
from shared.db.sql import Queries
from shared.domain import bulk_actions, drip
from shared.domain.bulk_actions import ActionStatus, BulkActionType, Mode, Refusal
from shared.domain.clock import Clock
from shared.domain.drip import Plan
from shared.domain.moments import Moment
from shared.domain.permissions import Ownership, can_view
from shared.messaging.contracts import BulkActionProgress, MessageType
from shared.messaging.envelope import Cause
from shared.messaging.transaction import Transaction, transaction
from shared.settings import Settings

BULK_ACTIONS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter()


@router.post(
    "/bulk-actions",
    status_code=201,
    response_model=BulkAction,
    summary="Start a bulk action over contacts",
)
async def create_action(
    body: BulkActionCreate,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> BulkAction:
    action_id = uuid4()
    async with database.acquire() as connection, connection.transaction():
        await record(connection, who, action_id, body, clock.now())
    return await read(database, settings, who, action_id)


async def record(
    connection: DbConnection, who: Principal, action_id: UUID, body: BulkActionCreate, now: datetime
) -> None:
    """Check and record a new bulk action in the caller's transaction: over HTTP, or asked for
    over Kafka (bulk_action.requested, services/api/bulk_actions/requests.py). Raises Problem."""
    kind = BulkActionType(body.action)
    params = parameters.validated_params(kind, body.params)
    plan = parameters.plan_of(body.mode, body.start_at, body.drip)
    await parameters.check_params(connection, who, kind, params)
    selection = parameters.selection_of(body.contact_ids, body.filter, params)
    await parameters.check_selection(connection, who, kind, selection)
    await connection.execute(
        BULK_ACTIONS["insert"],
        action_id,
        who.caller.organization_id,
        who.caller.user_id,
        body.name,
        kind.value,
        body.mode.value,
        selection,
        params,
        *parameters.plan_columns(plan),
        drip.first_batch_at(plan, now),
        None,
        now,
    )
    if kind is BulkActionType.SEND_MESSAGE:
        await carrier(connection, who, action_id, body.name, params, now)
    if kind is BulkActionType.IMPORT_CONTACTS:
        rows = await connection.fetchval(
            BULK_ACTIONS["claim_import"], UUID(params["import_id"]), action_id
        )
        if rows is None:
            raise Problem(
                409, "import_used", "Import already used", "another bulk action applies it already"
            )


@router.get("/bulk-actions", response_model=BulkActionPage, summary="Bulk actions")
async def list_actions(
    who: CurrentPrincipal,
    database: Database,
    settings: CurrentSettings,
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
    before = cursors.created_position(cursor)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
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
            keyset.fetch,
        )
    days = settings.contact_restore_days
    items, next_cursor = keyset.page(
        rows,
        lambda row: BulkAction.from_row(row, days),
        lambda last: cursors.created_cursor(last.created_at, last.id),
    )
    return BulkActionPage(items=items, next_cursor=next_cursor)


@router.get("/bulk-actions/{action_id}", response_model=BulkAction, summary="A bulk action")
async def get_action(
    action_id: UUID, who: CurrentPrincipal, database: Database, settings: CurrentSettings
) -> BulkAction:
    return await read(database, settings, who, action_id)


@router.patch(
    "/bulk-actions/{action_id}",
    response_model=BulkAction,
    summary="Edit a bulk action (spec 002 rules)",
)
async def update_action(
    action_id: UUID,
    body: BulkActionPatch,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> BulkAction:
    now = clock.now()
    fields = body.model_fields_set
    async with transaction(database, clock) as tx:
        connection = tx.connection
        await read(database, settings, who, action_id, connection)
        locked = await connection.fetchrow(BULK_ACTIONS["lock"], action_id)
        assert locked is not None
        row = BulkActionRow.from_row(locked)
        refusal = bulk_actions.edit_refusal(row.status, row.batches > 0, set(fields))
        if refusal is not None:
            raise Problem(409, refusal.code, "Cannot edit this bulk action", refusal.detail)
        kind = row.action
        if kind is BulkActionType.IMPORT_CONTACTS and (
            {"contact_ids", "filter"} & fields
            or (body.params is not None and body.params.get("import_id") != row.params["import_id"])
        ):
            raise Problem(
                409,
                "import_not_editable",
                "Cannot edit this bulk action",
                "an import's upload is fixed; its tags, campaign and schedule may change",
            )
        if kind is BulkActionType.MERGE_CONTACTS and fields - {"name"}:
            raise Problem(
                409,
                "merge_not_editable",
                "Cannot edit this bulk action",
                "a merge's pair and choices are fixed; cancel it and merge again",
            )
        selection = row.selection
        if {"contact_ids", "filter"} & fields:
            if (body.contact_ids is None) == (body.filter is None):
                raise invalid([field_error("contact_ids", "give either contact_ids or filter")])
            selection = parameters.selection_of(body.contact_ids, body.filter)
            await parameters.check_selection(connection, who, kind, selection)
        params = row.params
        if body.params is not None:
            params = parameters.validated_params(kind, body.params)
            await parameters.check_params(connection, who, kind, params)
        plan = parameters.edited_plan(row, body)
        next_at = row.next_batch_at
        if row.batches == 0 and row.status != ActionStatus.CANCELLED:
            next_at = drip.first_batch_at(plan, now)
        await connection.execute(
            BULK_ACTIONS["update"],
            action_id,
            body.name or row.name,
            selection,
            params,
            plan.mode.value,
            *parameters.plan_columns(plan),
            next_at,
            now,
        )
        await _changed(tx, who, action_id, now)
    return await read(database, settings, who, action_id)


@router.post("/bulk-actions/{action_id}/pause", response_model=BulkAction, summary="Pause")
async def pause_action(
    action_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> BulkAction:
    return await _control(
        database, clock, settings, who, action_id, lambda s, _: bulk_actions.pause(s)
    )


@router.post("/bulk-actions/{action_id}/resume", response_model=BulkAction, summary="Resume")
async def resume_action(
    action_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> BulkAction:
    return await _control(database, clock, settings, who, action_id, bulk_actions.resume)


@router.post("/bulk-actions/{action_id}/cancel", response_model=BulkAction, summary="Cancel")
async def cancel_action(
    action_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> BulkAction:
    return await _control(
        database, clock, settings, who, action_id, lambda s, _: bulk_actions.cancel(s)
    )


@router.post(
    "/bulk-actions/{action_id}/restore",
    status_code=201,
    response_model=BulkAction,
    summary="Restore the contacts a delete action deleted",
)
async def restore_action(
    action_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> BulkAction:
    """Creates a restore_contacts action: the contacts come back, with their campaign
    memberships where the campaign still exists."""
    now = clock.now()
    source = await read(database, settings, who, action_id)
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
    async with database.acquire() as connection, connection.transaction():
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
            *parameters.plan_columns(plan),
            now,
            action_id,
            now,
        )
    return await read(database, settings, who, restore_id)


@router.get(
    "/bulk-actions/{action_id}/items",
    response_model=BulkActionItemPage,
    summary="Each contact's outcome",
)
async def list_items(
    action_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    settings: CurrentSettings,
    status: Literal["pending", "succeeded", "skipped", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: str | None = None,
) -> BulkActionItemPage:
    action = await read(database, settings, who, action_id)
    keyset = Keyset(limit)
    if action.action == BulkActionType.IMPORT_CONTACTS:
        line = cursors.decode(cursor, cursors.LinePosition).n if cursor else 0
        async with database.acquire() as connection:
            rows = await connection.fetch(
                BULK_ACTIONS["import_items"], action_id, status, line, keyset.fetch
            )
        items, next_cursor = keyset.page(
            rows,
            lambda row: BulkActionItem.model_validate(dict(row)),
            lambda last: cursors.encode(n=last.line),
        )
        return BulkActionItemPage(items=items, next_cursor=next_cursor)
    after = cursors.decode(cursor, cursors.IdPosition).i if cursor else None
    async with database.acquire() as connection:
        rows = await connection.fetch(BULK_ACTIONS["items"], action_id, status, after, keyset.fetch)
    items, next_cursor = keyset.page(
        rows,
        lambda row: BulkActionItem.model_validate(dict(row)),
        lambda last: cursors.encode(i=last.contact_id),
    )
    return BulkActionItemPage(items=items, next_cursor=next_cursor)


@router.get(
    "/bulk-actions/{action_id}/statistics",
    response_model=BulkActionStatistics,
    summary="Success and error counts",
)
async def statistics(
    action_id: UUID, who: CurrentPrincipal, database: Database, settings: CurrentSettings
) -> BulkActionStatistics:
    action = await read(database, settings, who, action_id)
    async with database.acquire() as connection:
        imported = action.action == BulkActionType.IMPORT_CONTACTS
        codes = await connection.fetch(
            BULK_ACTIONS["import_codes" if imported else "outcome_codes"], action_id
        )
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


async def _control(
    database: Pool,
    clock: Clock,
    settings: Settings,
    who: Principal,
    action_id: UUID,
    rule: Callable[[ActionStatus, bool], ActionStatus | Refusal],
) -> BulkAction:
    now = clock.now()
    async with transaction(database, clock) as tx:
        connection = tx.connection
        await read(database, settings, who, action_id, connection)
        row = await connection.fetchrow(BULK_ACTIONS["lock"], action_id)
        assert row is not None
        outcome = rule(ActionStatus(row["status"]), row["batches"] > 0)
        if isinstance(outcome, Refusal):
            raise Problem(409, outcome.code, "Not possible now", outcome.detail)
        await connection.execute(BULK_ACTIONS["set_status"], action_id, outcome.value, now)
        if outcome is ActionStatus.CANCELLED:
            pending = "skip_pending"
            if row["action"] == BulkActionType.IMPORT_CONTACTS:
                pending = "skip_pending_rows"
            skipped = await connection.execute(BULK_ACTIONS[pending], action_id, now)
            count = int(skipped.rsplit(" ", 1)[1])
            await connection.execute(BULK_ACTIONS["count_skipped"], action_id, count)
        await _changed(tx, who, action_id, now)
    return await read(database, settings, who, action_id)


async def _changed(tx: Transaction, who: Principal, action_id: UUID, now: datetime) -> None:
    """bulk_action.changed, in the transaction of the change: the action as it now stands,
    by whom."""
    row = await tx.connection.fetchrow(BULK_ACTIONS["lock"], action_id)
    assert row is not None  # locked by the caller
    tx.outbox.emit(
        BulkActionProgress.of(row),
        key=action_id,
        cause=Cause(who.actor),
        type=MessageType.BULK_ACTION_CHANGED,
        at=now,
    )


async def read(
    database: Pool,
    settings: Settings,
    who: Principal,
    action_id: UUID,
    connection: DbConnection | None = None,
) -> BulkAction:
    """The action if the caller may see it, by the campaigns' rule (it names the creator's
    contacts and campaigns): its creator, or an owner or admin of its organization while admin
    view is on; 404 otherwise. Every read and change of an action or export starts here."""
    if connection is None:
        async with database.acquire() as fresh:
            row = await fresh.fetchrow(BULK_ACTIONS["get"], action_id)
    else:
        row = await connection.fetchrow(BULK_ACTIONS["get"], action_id)
    if row is None or not can_view(
        who.caller, Ownership(row["created_by"], row["organization_id"])
    ):
        raise not_found("bulk_action")
    return BulkAction.from_row(row, settings.contact_restore_days)


async def carrier(
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
        parameters.message_flow(params["text"]),
        action_id,
        now,
    )
