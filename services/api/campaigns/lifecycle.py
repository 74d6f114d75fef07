"""Lifecycle commands: published here, applied by the scheduler, answered through
services.api.commands. One endpoint per command, so each is a plain function with its own
name, documentation and OpenAPI operation."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.api import commands
from services.api.auth import CurrentPrincipal, Principal
from services.api.campaigns.definitions import CONFLICT, view
from services.api.campaigns.models import Campaign
from services.api.commands import CommandAccepted
from services.api.deps import Database
from shared.domain.permissions import Action
from shared.messaging.contracts import (
    CampaignCommand,
    CampaignDuplicate,
    CampaignLaunch,
    MessageType,
    Payload,
)

router = APIRouter()

ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": CommandAccepted, "description": "Not applied within the request"}
}
_ANSWERS = {**ACCEPTED, **CONFLICT}


async def _lifecycle(
    request: Request,
    database: Database,
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
    async with database.acquire() as connection:
        return await view(connection, campaign_id)


@router.post(
    "/{campaign_id}/launch",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Launch a campaign",
)
async def launch_campaign(
    campaign_id: UUID,
    who: CurrentPrincipal,
    request: Request,
    database: Database,
    reset_completed: bool = False,
) -> Campaign | JSONResponse:
    """From draft, paused, scheduled (run now) or failed (once its cause is fixed). Needs an
    enabled campaign, a connected and healthy account, at least one contact and a valid flow;
    every unmet requirement is reported in `errors`. Paused executions (a failed campaign's
    interrupted ones too) resume where they stopped; completed ones restart only with
    reset_completed=true."""
    payload = CampaignLaunch(campaign_id=campaign_id, reset_completed=reset_completed)
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_LAUNCH, Action.LAUNCH, payload
    )


@router.post(
    "/{campaign_id}/run-now",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Run a waiting campaign now",
    description="A scheduled or recurring campaign (Waiting, or with a missed_run_at) starts at "
    "once, its launch requirements checked as for launch; the missed run is cleared. A recurring "
    "campaign's finished executions start the flow again, and after this run it waits for its "
    "next occurrence. The same command as launch.",
)
async def run_campaign_now(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    payload = CampaignLaunch(campaign_id=campaign_id)
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_LAUNCH, Action.LAUNCH, payload
    )


# The descriptions are given whole rather than as docstrings: a docstring wrapped to the line
# length would put line breaks into the published OpenAPI text.


@router.post(
    "/{campaign_id}/pause",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Pause a campaign",
    description="From active: executions pause and keep next_execution_at.",
)
async def pause_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_PAUSE, Action.PAUSE
    )


@router.post(
    "/{campaign_id}/stop",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Stop a campaign",
    description="From active, paused, scheduled (Waiting) or failed: the campaign is cancelled, "
    "its schedule cleared, and every unfinished execution cancelled with 'Campaign stopped by "
    "user'.",
)
async def stop_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_STOP, Action.STOP
    )


@router.post(
    "/{campaign_id}/enable",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Enable a campaign",
    description="Allows launching again; changes no execution.",
)
async def enable_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_ENABLE, Action.ENABLE
    )


@router.post(
    "/{campaign_id}/disable",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Disable a campaign",
    description="Cancels every unfinished execution at once; the status stays.",
)
async def disable_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_DISABLE, Action.DISABLE
    )


@router.delete(
    "/{campaign_id}",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Delete a campaign (soft)",
    description="Sets deleted_at; statistics, logs and executions stay. Stop an active campaign "
    "first.",
)
async def delete_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_DELETE, Action.DELETE
    )


@router.post(
    "/{campaign_id}/restore",
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Restore a deleted campaign",
    description="Brings a deleted campaign back.",
)
async def restore_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    return await _lifecycle(
        request, database, who, campaign_id, MessageType.CAMPAIGN_RESTORE, Action.RESTORE
    )


@router.post(
    "/{campaign_id}/duplicate",
    status_code=201,
    response_model=Campaign,
    responses=ACCEPTED,
    summary="Duplicate a campaign",
)
async def duplicate_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
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
    async with database.acquire() as connection:
        return await view(connection, payload.copy_id)


@router.post(
    "/{campaign_id}/copy-unfinished",
    status_code=201,
    response_model=Campaign,
    responses=_ANSWERS,
    summary="Run a stopped campaign again as a copy",
    description="Only from a stopped (cancelled) campaign, which stays final: a draft named "
    "'{name} (Copy)' with its flow, settings and account, holding exactly the contacts whose "
    "executions never finished (neither completed nor failed), enrolled as adding contacts "
    "does (do-not-contact and recontact rules apply). Nobody who finished is in it. 409 "
    "invalid_status from any other status.",
)
async def copy_unfinished(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, database: Database
) -> Campaign | JSONResponse:
    payload = CampaignDuplicate(campaign_id=campaign_id, copy_id=uuid4(), unfinished_only=True)
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
    async with database.acquire() as connection:
        return await view(connection, payload.copy_id)
