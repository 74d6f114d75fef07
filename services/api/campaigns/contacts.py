"""The contacts of a campaign: added and removed by the scheduler's commands, listed here with
their execution's status."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from services.api import commands, cursors
from services.api.auth import CurrentPrincipal, Principal
from services.api.campaign_access import authorized
from services.api.campaigns.definitions import view
from services.api.campaigns.lifecycle import ACCEPTED
from services.api.campaigns.models import (
    CampaignContact,
    CampaignContactPage,
    ContactsAdded,
    ContactSelection,
    ContactsRemoved,
)
from services.api.deps import Database
from services.api.paging import Keyset
from shared.db.campaign_filter import like_pattern
from shared.db.sql import Queries
from shared.domain.permissions import Action
from shared.messaging.contracts import CampaignContacts, MessageType

CONTACTS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter()


async def _contacts_command(
    request: Request,
    database: Database,
    who: Principal,
    campaign_id: UUID,
    body: ContactSelection,
    add: bool,
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
    async with database.acquire() as connection:
        campaign = await view(connection, campaign_id)
    return {**outcome.payload.model_dump(exclude={"campaign_id"}), "campaign": campaign}


@router.post(
    "/{campaign_id}/contacts",
    response_model=ContactsAdded,
    responses=ACCEPTED,
    summary="Add contacts to a campaign",
)
async def add_contacts(
    campaign_id: UUID,
    body: ContactSelection,
    who: CurrentPrincipal,
    request: Request,
    database: Database,
) -> ContactsAdded | JSONResponse:
    """One pending execution per contact, due now. Contacts already in the campaign are skipped
    and counted; a completed campaign becomes active again."""
    result = await _contacts_command(request, database, who, campaign_id, body, add=True)
    return result if isinstance(result, JSONResponse) else ContactsAdded(**result)


@router.delete(
    "/{campaign_id}/contacts",
    response_model=ContactsRemoved,
    responses=ACCEPTED,
    summary="Remove contacts from a campaign",
)
async def remove_contacts(
    campaign_id: UUID,
    body: ContactSelection,
    who: CurrentPrincipal,
    request: Request,
    database: Database,
) -> ContactsRemoved | JSONResponse:
    """Their executions are soft-deleted: progress is lost, history kept."""
    result = await _contacts_command(request, database, who, campaign_id, body, add=False)
    return result if isinstance(result, JSONResponse) else ContactsRemoved(**result)


@router.get(
    "/{campaign_id}/contacts",
    response_model=CampaignContactPage,
    summary="Contacts of a campaign with their execution status",
)
async def list_campaign_contacts(
    campaign_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    status: Annotated[str | None, Query(max_length=50)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    company_id: Annotated[UUID | None, Query(description="Only the company's contacts.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> CampaignContactPage:
    after = cursors.created_position(cursor)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
        rows = await connection.fetch(
            CONTACTS["executions"],
            campaign_id,
            status,
            like_pattern(search) if search else None,
            *after,
            keyset.fetch,
            company_id,
        )
    items, next_cursor = keyset.page(
        rows,
        lambda row: CampaignContact.model_validate(dict(row)),
        lambda last: cursors.created_cursor(last.created_at, last.execution_id),
    )
    return CampaignContactPage(items=items, next_cursor=next_cursor)
