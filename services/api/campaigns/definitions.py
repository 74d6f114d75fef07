"""Campaign definitions, written here: create, list, read and edit."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query

from services.api import attachments, cursors, pipelines
from services.api.auth import CurrentPrincipal, Principal
from services.api.campaign_access import authorized
from services.api.campaigns import edits
from services.api.campaigns.models import (
    Campaign,
    CampaignCreate,
    CampaignPage,
    CampaignPatch,
    flow_errors,
    plan_errors,
)
from services.api.commands import rejection_problem
from services.api.deps import CurrentClock, CurrentSettings, Database, Replies
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db import campaigns as campaign_reads
from shared.db.campaign_filter import Where, add_filter
from shared.db.pool import DbConnection
from shared.db.rows import CampaignRow
from shared.db.sql import Queries
from shared.domain import campaigns as rules
from shared.domain import permissions, schedules
from shared.domain.bulk_operations import CampaignFilter
from shared.domain.campaigns import CampaignStatus, LaunchType
from shared.domain.permissions import Action, ViewMode
from shared.messaging.contracts import (
    CampaignCommandRejected,
    CampaignContacts,
    CampaignContactsAdded,
    CampaignLaunch,
    Decoded,
    MessageType,
    Payload,
)
from shared.messaging.envelope import Cause
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction

CAMPAIGNS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter()

CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Status conflict (problem+json)"}}

_VIEW = CAMPAIGNS["list"].format(where="c.id = $1", order="c.id", limit="1")


async def view(connection: DbConnection, campaign_id: UUID) -> Campaign:
    """The campaign as every endpoint of /campaign-flows answers it."""
    row = await connection.fetchrow(_VIEW, campaign_id)
    if row is None:
        raise not_found("campaign")
    return Campaign.from_row(row)


async def _account_errors(
    connection: DbConnection, who: Principal, account_id: UUID | None
) -> list[dict[str, Any]]:
    if account_id is None:
        return []
    found = await connection.fetchval(
        CAMPAIGNS["account_in_context"], account_id, who.caller.organization_id, who.caller.user_id
    )
    if found is None:
        return [
            field_error(
                "telegram_account_id",
                "no such Telegram account in this organization or workspace",
                "not_found",
            )
        ]
    return []


_LAUNCH_OUTCOMES = (MessageType.CAMPAIGN_STATUS_CHANGED, MessageType.CAMPAIGN_COMMAND_REJECTED)
_CONTACT_OUTCOMES = (MessageType.CAMPAIGN_CONTACTS_ADDED, MessageType.CAMPAIGN_COMMAND_REJECTED)


async def _launch_if_ready(
    connection: DbConnection,
    outbox: Outbox,
    who: Principal,
    row: Any,
    correlation_id: UUID,
    *,
    contacts_coming: int = 0,
) -> bool:
    """Issue 16, launch type "now": a save that leaves the campaign launchable asks the scheduler
    to launch it, in the save's own transaction (so a save is never committed without its
    launch). `contacts_coming`: contacts the same save asked the scheduler to add, which it
    applies first (same key, same partition). The scheduler checks everything again."""
    state = rules.CampaignState(
        CampaignStatus(row["status"]),
        row["enabled"],
        LaunchType(row["launch_type"]),
        row["deleted_at"] is not None,
    )
    readiness = await campaign_reads.readiness(connection, row["id"])
    if contacts_coming:
        readiness = replace(readiness, contacts=readiness.contacts + contacts_coming)
    ownership = permissions.CampaignOwnership(row["created_by"], row["organization_id"])
    may_launch = permissions.decide(who.caller, ownership, Action.LAUNCH)
    if may_launch is not permissions.Decision.ALLOWED or not rules.launches_on_save(
        state, readiness
    ):
        return False
    outbox.emit(
        CampaignLaunch(campaign_id=row["id"]),
        key=row["id"],
        cause=Cause(who.actor, correlation_id),
        type=MessageType.CAMPAIGN_LAUNCH,
    )
    return True


async def _answer(reply: asyncio.Future[Decoded[Payload]], wait_s: float) -> Payload | None:
    """The outcome of a command the save published, if it comes within the wait; a save is
    answered with the campaign as it stands either way."""
    try:
        return (await asyncio.wait_for(asyncio.shield(reply), wait_s)).payload
    except TimeoutError:
        return None


@router.post("", status_code=201, response_model=Campaign, summary="Create a campaign")
async def create_campaign(
    body: CampaignCreate,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    replies: Replies,
    settings: CurrentSettings,
) -> Campaign:
    """A "now" campaign saved with every launch requirement met (counting `contact_ids`) is
    launched at once; otherwise it stays a draft listing its `unmet_requirements`."""
    adding, launching = uuid4(), uuid4()
    async with contextlib.AsyncExitStack() as waits:
        added = await waits.enter_async_context(replies.expect(adding, _CONTACT_OUTCOMES))
        launched = await waits.enter_async_context(replies.expect(launching, _LAUNCH_OUTCOMES))
        async with transaction(database, clock) as tx:
            connection = tx.connection
            errors = plan_errors(body.launch_type, body.scheduled_at, body.recurrence)
            errors += flow_errors(body.flow)
            errors += await attachments.flow_errors(connection, who.caller, body.flow)
            errors += await pipelines.flow_errors(connection, who.caller, body.flow)
            errors += await _account_errors(connection, who, body.telegram_account_id)
            if errors:
                raise invalid(errors)
            row = await connection.fetchrow(
                CAMPAIGNS["insert"],
                who.caller.organization_id,
                who.caller.user_id,
                body.name,
                body.description,
                body.telegram_account_id,
                body.timezone,
                body.launch_type.value,
                body.scheduled_at,
                body.recurrence,
                body.flow,
                body.settings.model_dump(mode="json"),
                body.tags,
            )
            assert row is not None
            campaign_id = row["id"]
            if body.contact_ids:
                # Executions belong to the scheduler: the contacts go in through its command.
                # If it answers late, the campaign is returned without them; they follow.
                tx.outbox.emit(
                    CampaignContacts(campaign_id=campaign_id, contact_ids=body.contact_ids),
                    key=campaign_id,
                    cause=Cause(who.actor, adding),
                    type=MessageType.CAMPAIGN_ADD_CONTACTS,
                )
            launches = await _launch_if_ready(
                connection, tx.outbox, who, row, launching, contacts_coming=len(body.contact_ids)
            )
        if body.contact_ids:
            outcome = await _answer(added, settings.command_wait_s)
            if isinstance(outcome, CampaignCommandRejected):
                raise rejection_problem(outcome)
            assert outcome is None or isinstance(outcome, CampaignContactsAdded)
        if launches:
            # A refused launch (a contact not found after all) leaves a draft with its list.
            await _answer(launched, settings.command_wait_s)
    async with database.acquire() as connection:
        return await view(connection, campaign_id)


SortKey = Literal["created_at", "updated_at", "name", "launch_type"]
# The sort column, and the type its cursor value is cast to.
_SORTS: dict[str, tuple[str, str]] = {
    "created_at": ("c.created_at", "timestamptz"),
    "updated_at": ("c.updated_at", "timestamptz"),
    "name": ("c.name", "text"),
    "launch_type": ("c.launch_type", "text"),
}
Channel = Literal["telegram", "email", "sms", "webpush", "viber"]


@router.get("", response_model=CampaignPage, summary="List campaigns")
async def list_campaigns(
    who: CurrentPrincipal,
    database: Database,
    view_mode: ViewMode = ViewMode.OWN,
    status: Annotated[list[CampaignStatus] | None, Query()] = None,
    enabled: bool | None = None,
    launch_type: Annotated[list[LaunchType] | None, Query()] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    channel: Channel | None = None,
    created_by: UUID | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    sort: SortKey = "created_at",
    order: Literal["asc", "desc"] | None = None,
    include_deleted: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> CampaignPage:
    """view_mode "all" needs an owner or admin with admin_view_enabled; anyone else gets "own".
    search matches the name, or the exact id."""
    caller = who.caller
    direction = order or ("desc" if sort in ("created_at", "updated_at") else "asc")
    selection = CampaignFilter(
        view_mode=view_mode,
        status=status,
        enabled=enabled,
        launch_type=launch_type,
        tag=tag,
        channel=channel,
        created_by=created_by,
        search=search,
    )
    where = Where()
    add_filter(where, caller, selection, include_deleted=include_deleted)
    column, cast = _SORTS[sort]
    if cursor:
        position = cursors.decode(cursor, cursors.SortedPosition)
        if (position.s, position.o) != (sort, direction):
            raise cursors.invalid("the cursor belongs to another sort order")
        value: Any = position.moment() if cast == "timestamptz" else position.v
        comparison = "<" if direction == "desc" else ">"
        where.add(
            f"({column}, c.id) {comparison} ({where.bind(value)}::{cast},"
            f" {where.bind(position.i)}::uuid)"
        )
    keyset = Keyset(limit)
    query = CAMPAIGNS["list"].format(
        where=where.sql,
        order=f"{column} {direction}, c.id {direction}",
        limit=where.bind(keyset.fetch),
    )
    async with database.acquire() as connection:
        rows = await connection.fetch(query, *where.values)
    items, next_cursor = keyset.page(
        rows,
        Campaign.from_row,
        lambda last: cursors.encode(v=getattr(last, sort), i=last.id, s=sort, o=direction),
    )
    return CampaignPage(items=items, next_cursor=next_cursor)


@router.get("/{campaign_id}", response_model=Campaign, summary="Read a campaign")
async def get_campaign(campaign_id: UUID, who: CurrentPrincipal, database: Database) -> Campaign:
    async with database.acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
        return await view(connection, campaign_id)


@router.patch(
    "/{campaign_id}", response_model=Campaign, responses=CONFLICT, summary="Edit a campaign"
)
async def update_campaign(
    campaign_id: UUID,
    body: CampaignPatch,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    replies: Replies,
    settings: CurrentSettings,
) -> Campaign:
    """The flow and launch plan are editable in draft, paused, scheduled and failed; name,
    description, account, time zone, tags and response handling in any status but completed and
    cancelled (read-only history); A/B test settings unless active. A "now" draft this edit
    makes launchable is launched; a change of the launch plan answers a missed run."""
    nulls = edits.null_errors(body)
    if nulls:
        raise invalid(nulls)
    launching = uuid4()
    async with (
        replies.expect(launching, _LAUNCH_OUTCOMES) as launched,
        transaction(database, clock) as tx,
    ):
        connection = tx.connection
        row = await authorized(connection, who, campaign_id, Action.EDIT, lock=True)
        merged = edits.merge(dict(row), body)
        status = CampaignStatus(row["status"])
        errors = edits.merged_errors(status, merged, body)
        if "telegram_account_id" in body.model_fields_set:
            errors += await _account_errors(connection, who, merged["telegram_account_id"])
        if "flow" in body.model_fields_set:
            errors += await attachments.flow_errors(connection, who.caller, merged["flow"])
            errors += await pipelines.flow_errors(connection, who.caller, merged["flow"])
        if errors:
            raise invalid(errors)
        refusal = rules.edit_refusal(CampaignRow.from_row(row).state, edits.field_groups(body))
        if refusal is not None:
            raise Problem(409, refusal.code, "Cannot edit", refusal.detail)
        next_run = schedules.next_run(
            LaunchType(merged["launch_type"]),
            scheduled_at=merged["scheduled_at"],
            recurrence=merged["recurrence"],
            timezone=merged["timezone"],
            now=clock.now(),
        )
        replanned = bool(body.model_fields_set & edits.REPLANS)
        updated = await connection.fetchrow(
            CAMPAIGNS["update"],
            campaign_id,
            *(merged[name] for name in edits.EDITABLE),
            next_run,
            replanned,
        )
        launches = await _launch_if_ready(connection, tx.outbox, who, updated, launching)
    if launches:
        await _answer(launched, settings.command_wait_s)
    async with database.acquire() as connection:
        return await view(connection, campaign_id)
