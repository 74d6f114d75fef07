"""/campaign-flows: campaign definitions (written here) and lifecycle commands (applied by the
scheduler, answered through services.api.commands)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.api import commands, cursors
from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.campaign_access import authorized
from services.api.campaign_models import (
    NOT_NULL,
    Calendar,
    CalendarEntry,
    Campaign,
    CampaignContact,
    CampaignContactPage,
    CampaignCreate,
    CampaignPage,
    CampaignPatch,
    ContactsAdded,
    ContactSelection,
    ContactsRemoved,
    flow_errors,
    plan_errors,
)
from services.api.commands import CommandAccepted
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db.campaign_filter import Where, add_filter, like_pattern
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import campaigns as rules
from shared.domain import permissions, schedules
from shared.domain.bulk import CampaignFilter
from shared.domain.campaigns import CampaignStatus, FieldGroup, LaunchType
from shared.domain.moments import Moment
from shared.domain.permissions import Action, ViewMode
from shared.messaging.contracts import (
    CampaignCommand,
    CampaignContacts,
    CampaignDuplicate,
    CampaignLaunch,
    MessageType,
    Payload,
)

CAMPAIGNS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/campaign-flows", tags=["campaigns"])

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": CommandAccepted, "description": "Not applied within the request"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Status conflict (problem+json)"}}


_VIEW = CAMPAIGNS["list"].format(where="c.id = $1", order="c.id", limit="1")


async def _view(connection: DbConnection, campaign_id: UUID) -> Campaign:
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


# Definitions ----------------------------------------------------------------------------------


@router.post("", status_code=201, response_model=Campaign, summary="Create a campaign")
async def create_campaign(
    body: CampaignCreate, who: CurrentPrincipal, request: Request
) -> Campaign:
    async with pool(request).acquire() as connection, connection.transaction():
        errors = plan_errors(body.launch_type, body.scheduled_at, body.recurrence)
        errors += flow_errors(body.flow)
        errors += await _account_errors(connection, who, body.telegram_account_id)
        if errors:
            raise invalid(errors)
        campaign_id = await connection.fetchval(
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
    if body.contact_ids:
        # Executions belong to the scheduler: the contacts go in through its command. If it
        # answers late, the campaign is returned without them and they follow shortly.
        payload = CampaignContacts(campaign_id=campaign_id, contact_ids=body.contact_ids)
        await commands.send(
            request,
            who,
            campaign_id,
            MessageType.CAMPAIGN_ADD_CONTACTS,
            payload,
            Action.ADD_CONTACTS,
            MessageType.CAMPAIGN_CONTACTS_ADDED,
        )
    async with pool(request).acquire() as connection:
        return await _view(connection, campaign_id)


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
    request: Request,
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
    query = CAMPAIGNS["list"].format(
        where=where.sql,
        order=f"{column} {direction}, c.id {direction}",
        limit=where.bind(limit + 1),
    )
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(query, *where.values)
    items = [Campaign.from_row(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = cursors.encode(v=getattr(last, sort), i=last.id, s=sort, o=direction)
    return CampaignPage(items=items, next_cursor=next_cursor)


MAX_CALENDAR_DAYS = 366
MAX_CALENDAR_ENTRIES = 5000


@router.get(
    "/calendar", response_model=Calendar, response_model_by_alias=True, summary="Launches by date"
)
async def calendar(
    who: CurrentPrincipal,
    request: Request,
    start: Annotated[Moment, Query(alias="from")],
    end: Annotated[Moment, Query(alias="to")],
    view_mode: ViewMode = ViewMode.OWN,
) -> Calendar:
    """Scheduled launches, every occurrence of recurring campaigns in their time zone, and the
    launches of now and manual campaigns, in [from, to). Drafts have no launch time."""
    if end <= start:
        raise invalid([field_error("to", "'to' must be after 'from'")])
    if end - start > timedelta(days=MAX_CALENDAR_DAYS):
        raise invalid([field_error("to", f"the range may span at most {MAX_CALENDAR_DAYS} days")])
    caller = who.caller
    own = permissions.effective_view_mode(caller, view_mode) is ViewMode.OWN
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(
            CAMPAIGNS["calendar"],
            caller.organization_id,
            caller.user_id if own else None,
            start,
            end,
        )
    entries: list[CalendarEntry] = []
    for row in rows:
        launch_type = LaunchType(row["launch_type"])
        moments: list[tuple[datetime, Literal["scheduled", "recurring", "launched"]]]
        if launch_type is LaunchType.SCHEDULE:
            moments = [(row["scheduled_at"], "scheduled")]
        elif launch_type is LaunchType.RECURRING:
            found = schedules.occurrences_between(
                row["recurrence"], row["timezone"], start, end, MAX_CALENDAR_ENTRIES
            )
            moments = [(moment, "recurring") for moment in found]
        else:
            moments = [(row["launched_at"], "launched")]
        zone = ZoneInfo(row["timezone"])
        for at, kind in moments:
            entries.append(
                CalendarEntry(
                    date=at.astimezone(zone).date().isoformat(),
                    at=at,
                    kind=kind,
                    campaign_id=row["id"],
                    name=row["name"],
                    description=row["description"],
                    status=row["status"],
                    launch_type=launch_type,
                    timezone=row["timezone"],
                )
            )
    entries.sort(key=lambda e: (e.at, str(e.campaign_id)))
    truncated = len(entries) > MAX_CALENDAR_ENTRIES
    return Calendar(start=start, end=end, items=entries[:MAX_CALENDAR_ENTRIES], truncated=truncated)


@router.get("/{campaign_id}", response_model=Campaign, summary="Read a campaign")
async def get_campaign(campaign_id: UUID, who: CurrentPrincipal, request: Request) -> Campaign:
    async with pool(request).acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
        return await _view(connection, campaign_id)


def _field_groups(patch: CampaignPatch) -> set[FieldGroup]:
    groups = set()
    present = patch.model_fields_set
    if present & {"name", "description", "telegram_account_id", "timezone", "tags"}:
        groups.add(FieldGroup.METADATA)
    if present & {"flow", "launch_type", "scheduled_at", "recurrence"}:
        groups.add(FieldGroup.FLOW)
    if patch.settings is not None:
        if "ab_test" in patch.settings.model_fields_set:
            groups.add(FieldGroup.AB_TEST)
        if patch.settings.model_fields_set & {"response_handling", "active_hours"}:
            groups.add(FieldGroup.METADATA)
    return groups


@router.patch(
    "/{campaign_id}", response_model=Campaign, responses=CONFLICT, summary="Edit a campaign"
)
async def update_campaign(
    campaign_id: UUID, body: CampaignPatch, who: CurrentPrincipal, request: Request
) -> Campaign:
    """The flow and launch plan are editable in draft, paused and scheduled; name, description,
    account, time zone, tags and response handling in any status but completed and cancelled
    (read-only history); A/B test settings unless active."""
    present = body.model_fields_set
    nulls = [
        field_error(name, f"{name} cannot be null", "missing")
        for name in NOT_NULL
        if name in present and getattr(body, name) is None
    ]
    if nulls:
        raise invalid(nulls)
    async with pool(request).acquire() as connection, connection.transaction():
        row = await authorized(connection, who, campaign_id, Action.EDIT, lock=True)
        merged = {
            name: row[name]
            for name in (
                "name",
                "description",
                "telegram_account_id",
                "timezone",
                "launch_type",
                "scheduled_at",
                "recurrence",
                "flow",
                "settings",
                "tags",
            )
        }
        for name in present - {"settings"}:
            value = getattr(body, name)
            merged[name] = value.value if isinstance(value, LaunchType) else value
        if body.settings is not None:
            merged["settings"] = {
                **merged["settings"],
                **body.settings.model_dump(mode="json", exclude_unset=True),
            }
        status = CampaignStatus(row["status"])
        launch_type = LaunchType(merged["launch_type"])
        errors = []
        if present & {"launch_type", "scheduled_at", "recurrence"}:
            errors += plan_errors(launch_type, merged["scheduled_at"], merged["recurrence"])
            if status is CampaignStatus.SCHEDULED and launch_type not in (
                LaunchType.SCHEDULE,
                LaunchType.RECURRING,
            ):
                errors.append(
                    field_error(
                        "launch_type",
                        "a scheduled campaign keeps a schedule or recurring "
                        "launch type; pause or stop it to change that",
                    )
                )
        if "flow" in present:
            errors += flow_errors(merged["flow"])
        if "telegram_account_id" in present:
            errors += await _account_errors(connection, who, merged["telegram_account_id"])
        if errors:
            raise invalid(errors)
        state = rules.CampaignState(
            status, row["enabled"], LaunchType(row["launch_type"]), row["deleted_at"] is not None
        )
        refusal = rules.edit_refusal(state, _field_groups(body))
        if refusal is not None:
            raise Problem(409, refusal.code, "Cannot edit", refusal.detail)
        next_run = schedules.next_run(
            launch_type,
            scheduled_at=merged["scheduled_at"],
            recurrence=merged["recurrence"],
            timezone=merged["timezone"],
            now=request.app.state.service.clock.now(),
        )
        await connection.execute(
            CAMPAIGNS["update"],
            campaign_id,
            merged["name"],
            merged["description"],
            merged["telegram_account_id"],
            merged["timezone"],
            merged["launch_type"],
            merged["scheduled_at"],
            merged["recurrence"],
            merged["flow"],
            merged["settings"],
            merged["tags"],
            next_run,
        )
        return await _view(connection, campaign_id)


# Lifecycle commands ---------------------------------------------------------------------------


async def _lifecycle(
    request: Request,
    who: Principal,
    campaign_id: UUID,
    command: MessageType,
    action: Action,
    payload: Payload | None = None,
) -> Campaign | JSONResponse:
    body = payload or CampaignCommand(campaign_id=campaign_id)
    outcome = await commands.send(
        request, who, campaign_id, command, body, action, MessageType.CAMPAIGN_STATUS_CHANGED
    )
    if isinstance(outcome, JSONResponse):
        return outcome
    async with pool(request).acquire() as connection:
        return await _view(connection, campaign_id)


@router.post(
    "/{campaign_id}/launch",
    response_model=Campaign,
    responses={**ACCEPTED, **CONFLICT},
    summary="Launch a campaign",
)
async def launch_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, reset_completed: bool = False
) -> Campaign | JSONResponse:
    """From draft or paused. Needs an enabled campaign, a connected and healthy account, at least
    one contact and a valid flow; every unmet requirement is reported in `errors`. Paused
    executions resume; completed ones restart only with reset_completed=true."""
    payload = CampaignLaunch(campaign_id=campaign_id, reset_completed=reset_completed)
    return await _lifecycle(
        request, who, campaign_id, MessageType.CAMPAIGN_LAUNCH, Action.LAUNCH, payload
    )


def _simple(command: MessageType, action: Action, summary: str, doc: str) -> None:
    async def endpoint(
        campaign_id: UUID, who: CurrentPrincipal, request: Request
    ) -> Campaign | JSONResponse:
        return await _lifecycle(request, who, campaign_id, command, action)

    endpoint.__doc__ = doc
    endpoint.__name__ = f"{action.value}_campaign"
    path = f"/{{campaign_id}}/{action.value}"
    method = router.post
    if action is Action.DELETE:
        path, method = "/{campaign_id}", router.delete
    method(path, response_model=Campaign, responses={**ACCEPTED, **CONFLICT}, summary=summary)(
        endpoint
    )


_simple(
    MessageType.CAMPAIGN_PAUSE,
    Action.PAUSE,
    "Pause a campaign",
    "From active: executions pause and keep next_execution_at.",
)
_simple(
    MessageType.CAMPAIGN_STOP,
    Action.STOP,
    "Stop a campaign",
    "From active or paused: the campaign is cancelled, and so is every unfinished "
    "execution, with 'Campaign stopped by user'.",
)
_simple(
    MessageType.CAMPAIGN_ENABLE,
    Action.ENABLE,
    "Enable a campaign",
    "Allows launching again; changes no execution.",
)
_simple(
    MessageType.CAMPAIGN_DISABLE,
    Action.DISABLE,
    "Disable a campaign",
    "Cancels every unfinished execution at once; the status stays.",
)
_simple(
    MessageType.CAMPAIGN_DELETE,
    Action.DELETE,
    "Delete a campaign (soft)",
    "Sets deleted_at; statistics, logs and executions stay. Stop an active campaign first.",
)
_simple(
    MessageType.CAMPAIGN_RESTORE,
    Action.RESTORE,
    "Restore a deleted campaign",
    "Brings a deleted campaign back.",
)


@router.post(
    "/{campaign_id}/duplicate",
    status_code=201,
    response_model=Campaign,
    responses=ACCEPTED,
    summary="Duplicate a campaign",
)
async def duplicate_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request
) -> Campaign | JSONResponse:
    """A draft named "{name} (Copy)" with the flow and settings, and no contacts, created by the
    caller."""
    payload = CampaignDuplicate(campaign_id=campaign_id, copy_id=uuid4())
    outcome = await commands.send(
        request,
        who,
        campaign_id,
        MessageType.CAMPAIGN_DUPLICATE,
        payload,
        Action.DUPLICATE,
        MessageType.CAMPAIGN_DUPLICATED,
    )
    if isinstance(outcome, JSONResponse):
        return outcome
    async with pool(request).acquire() as connection:
        return await _view(connection, payload.copy_id)


# Contacts of a campaign -----------------------------------------------------------------------


async def _contacts_command(
    request: Request, who: Principal, campaign_id: UUID, body: ContactSelection, add: bool
) -> dict[str, Any] | JSONResponse:
    """The counts the scheduler reported, with the campaign as it now stands; or a 202."""
    payload = CampaignContacts(campaign_id=campaign_id, contact_ids=body.contact_ids)
    if add:
        command, action = MessageType.CAMPAIGN_ADD_CONTACTS, Action.ADD_CONTACTS
        outcome_type = MessageType.CAMPAIGN_CONTACTS_ADDED
    else:
        command, action = MessageType.CAMPAIGN_REMOVE_CONTACTS, Action.REMOVE_CONTACTS
        outcome_type = MessageType.CAMPAIGN_CONTACTS_REMOVED
    outcome = await commands.send(request, who, campaign_id, command, payload, action, outcome_type)
    if isinstance(outcome, JSONResponse):
        return outcome
    async with pool(request).acquire() as connection:
        campaign = await _view(connection, campaign_id)
    return {**outcome.payload.model_dump(exclude={"campaign_id"}), "campaign": campaign}


@router.post(
    "/{campaign_id}/contacts",
    response_model=ContactsAdded,
    responses=ACCEPTED,
    summary="Add contacts to a campaign",
)
async def add_contacts(
    campaign_id: UUID, body: ContactSelection, who: CurrentPrincipal, request: Request
) -> ContactsAdded | JSONResponse:
    """One pending execution per contact, due now. Contacts already in the campaign are skipped
    and counted; a completed campaign becomes active again."""
    result = await _contacts_command(request, who, campaign_id, body, add=True)
    return result if isinstance(result, JSONResponse) else ContactsAdded(**result)


@router.delete(
    "/{campaign_id}/contacts",
    response_model=ContactsRemoved,
    responses=ACCEPTED,
    summary="Remove contacts from a campaign",
)
async def remove_contacts(
    campaign_id: UUID, body: ContactSelection, who: CurrentPrincipal, request: Request
) -> ContactsRemoved | JSONResponse:
    """Their executions are soft-deleted: progress is lost, history kept."""
    result = await _contacts_command(request, who, campaign_id, body, add=False)
    return result if isinstance(result, JSONResponse) else ContactsRemoved(**result)


@router.get(
    "/{campaign_id}/contacts",
    response_model=CampaignContactPage,
    summary="Contacts of a campaign with their execution status",
)
async def list_campaign_contacts(
    campaign_id: UUID,
    who: CurrentPrincipal,
    request: Request,
    status: Annotated[str | None, Query(max_length=50)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> CampaignContactPage:
    after: tuple[datetime | None, UUID | None] = (None, None)
    if cursor:
        position = cursors.decode(cursor, cursors.CreatedPosition)
        after = (position.c, position.i)
    async with pool(request).acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
        rows = await connection.fetch(
            CAMPAIGNS["executions"],
            campaign_id,
            status,
            like_pattern(search) if search else None,
            *after,
            limit + 1,
        )
    items = [CampaignContact.model_validate(dict(row)) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = cursors.encode(c=items[-1].created_at.isoformat(), i=items[-1].execution_id)
    return CampaignContactPage(items=items, next_cursor=next_cursor)
