"""Lifecycle commands on campaigns, applied by the scheduler (the single writer of status)."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from shared.db.sql import Queries
from shared.domain import campaigns, permissions
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    CampaignCommandRejected,
    CampaignLaunch,
    CampaignStatusChanged,
    Decoded,
    MessageType,
)
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))


async def on_launch(context: HandlerContext, message: Decoded) -> None:
    payload = message.payload
    assert isinstance(payload, CampaignLaunch)
    actor = message.envelope.actor
    assert actor is not None  # the contract requires one
    row = await context.connection.fetchrow(QUERIES["lock_campaign"], payload.campaign_id)
    caller = await _caller(context, actor)
    if row is None:
        return _reject(context, message, payload.campaign_id, "campaign_not_found",
                       "no such campaign")  # fmt: skip
    ownership = permissions.CampaignOwnership(row["created_by"], row["organization_id"])
    decision = permissions.decide(caller, ownership, permissions.Action.LAUNCH)
    if decision is permissions.Decision.INVISIBLE:
        return _reject(context, message, payload.campaign_id, "campaign_not_found",
                       "no such campaign")  # fmt: skip
    if decision is permissions.Decision.FORBIDDEN:
        return _reject(context, message, payload.campaign_id, "permission_denied",
                       "only the campaign's creator may launch it")  # fmt: skip
    previous = campaigns.CampaignStatus(row["status"])
    outcome = campaigns.launch(
        campaigns.CampaignState(
            status=previous,
            enabled=row["enabled"],
            launch_type=campaigns.LaunchType(row["launch_type"]),
            deleted=row["deleted_at"] is not None,
        )
    )
    if isinstance(outcome, campaigns.Refusal):
        return _reject(context, message, payload.campaign_id, outcome.code, outcome.detail)
    now = context.clock.now()
    await context.connection.execute(
        QUERIES["set_launched"], payload.campaign_id, outcome.status.value, now
    )
    event = CampaignStatusChanged(
        campaign_id=payload.campaign_id,
        previous_status=previous.value,
        status=outcome.status.value,
        enabled=row["enabled"],
        cause=message.envelope.type,
    )
    _emit(context, message, payload.campaign_id, MessageType.CAMPAIGN_STATUS_CHANGED, event)


async def _caller(context: HandlerContext, actor: Actor) -> permissions.Caller:
    if actor.organization_id is None:
        return permissions.Caller(actor.user_id, None, None)
    row = await context.connection.fetchrow(
        QUERIES["caller_context"], actor.organization_id, actor.user_id
    )
    if row is None:
        return permissions.Caller(actor.user_id, actor.organization_id, None)
    return permissions.Caller(
        actor.user_id, actor.organization_id, permissions.Role(row["role"]),
        admin_view_enabled=row["admin_view_enabled"],
    )  # fmt: skip


def _reject(
    context: HandlerContext, message: Decoded, campaign_id: UUID, code: str, detail: str
) -> None:
    event = CampaignCommandRejected(
        campaign_id=campaign_id, command=message.envelope.type, code=code, detail=detail
    )
    _emit(context, message, campaign_id, MessageType.CAMPAIGN_COMMAND_REJECTED, event)


def _emit(
    context: HandlerContext,
    cause: Decoded,
    campaign_id: UUID,
    message_type: MessageType,
    payload: CampaignStatusChanged | CampaignCommandRejected,
) -> None:
    envelope = new_envelope(
        type=message_type,
        payload=payload,
        occurred_at=context.clock.now(),
        actor=cause.envelope.actor,
        correlation_id=cause.envelope.correlation_id,
        causation_id=cause.envelope.message_id,
    )
    context.outbox.add(Topic.CAMPAIGN_EVENTS, str(campaign_id), envelope)
