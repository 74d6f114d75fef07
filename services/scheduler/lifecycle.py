"""Lifecycle commands on campaigns, applied by the scheduler (the single writer of status).

Each command runs in the consumer's transaction: lock the campaign, check the actor's permission
(exactly as the API does), ask the state machine, apply the change to the campaign and its
executions, and emit the outcome, or a rejection, with the command's correlation id.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from shared.db import campaigns as campaign_reads
from shared.db.sql import Queries
from shared.domain import campaigns, permissions, schedules
from shared.domain.campaigns import Change, ExecutionEffect, Refusal
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    CampaignCommand,
    CampaignCommandRejected,
    CampaignContacts,
    CampaignContactsAdded,
    CampaignContactsRemoved,
    CampaignDuplicate,
    CampaignDuplicated,
    CampaignLaunch,
    CampaignStatusChanged,
    Decoded,
    MessageType,
    Payload,
    Unmet,
)
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))

# Commands that only change the campaign's state: the permission each needs, and the rule.
SIMPLE: dict[
    MessageType, tuple[permissions.Action, Callable[[campaigns.CampaignState], Change | Refusal]]
] = {
    MessageType.CAMPAIGN_PAUSE: (permissions.Action.PAUSE, campaigns.pause),
    MessageType.CAMPAIGN_STOP: (permissions.Action.STOP, campaigns.stop),
    MessageType.CAMPAIGN_ENABLE: (permissions.Action.ENABLE, campaigns.enable),
    MessageType.CAMPAIGN_DISABLE: (permissions.Action.DISABLE, campaigns.disable),
    MessageType.CAMPAIGN_DELETE: (permissions.Action.DELETE, campaigns.delete),
    MessageType.CAMPAIGN_RESTORE: (permissions.Action.RESTORE, campaigns.restore),
}

_PERMISSION_DENIED = {
    permissions.Action.LAUNCH: "only the campaign's creator may launch it",
    permissions.Action.PAUSE: "only the campaign's creator may pause it",
}


class Rejected(Exception):
    def __init__(self, code: str, detail: str, unmet: tuple[campaigns.Unmet, ...] = ()) -> None:
        super().__init__(detail)
        self.code, self.detail, self.unmet = code, detail, unmet


async def on_command(context: HandlerContext, message: Decoded) -> None:
    """Every campaign command; rejections become events, never dead letters."""
    payload = message.payload
    campaign_id: UUID = payload.campaign_id  # type: ignore[attr-defined]
    try:
        await _apply(context, message, campaign_id)
    except Rejected as rejected:
        event = CampaignCommandRejected(
            campaign_id=campaign_id,
            command=message.envelope.type,
            code=rejected.code,
            detail=rejected.detail,
            unmet=[Unmet(code=u.code, detail=u.detail) for u in rejected.unmet],
        )
        _emit(context, message, campaign_id, MessageType.CAMPAIGN_COMMAND_REJECTED, event)


async def _apply(context: HandlerContext, message: Decoded, campaign_id: UUID) -> None:
    kind = MessageType(message.envelope.type)
    row = await context.connection.fetchrow(QUERIES["lock_campaign"], campaign_id)
    action = _action(kind)
    await _authorize(context, message.envelope.actor, row, action)
    assert row is not None
    state = campaigns.CampaignState(
        status=campaigns.CampaignStatus(row["status"]),
        enabled=row["enabled"],
        launch_type=campaigns.LaunchType(row["launch_type"]),
        deleted=row["deleted_at"] is not None,
    )
    payload = message.payload
    if isinstance(payload, CampaignLaunch):
        readiness = await campaign_reads.readiness(context.connection, campaign_id)
        outcome = campaigns.launch(state, readiness, reset_completed=payload.reset_completed)
        await _change(context, message, row, state, _accepted(outcome), launched=True)
    elif isinstance(payload, CampaignDuplicate):
        await _duplicate(context, message, row, state, payload)
    elif isinstance(payload, CampaignContacts) and kind is MessageType.CAMPAIGN_ADD_CONTACTS:
        await _add_contacts(context, message, row, state, payload)
    elif isinstance(payload, CampaignContacts):
        await _remove_contacts(context, message, row, state, payload)
    else:
        assert isinstance(payload, CampaignCommand)
        await _change(context, message, row, state, _accepted(SIMPLE[kind][1](state)))


def _action(kind: MessageType) -> permissions.Action:
    if kind in SIMPLE:
        return SIMPLE[kind][0]
    return {
        MessageType.CAMPAIGN_LAUNCH: permissions.Action.LAUNCH,
        MessageType.CAMPAIGN_DUPLICATE: permissions.Action.DUPLICATE,
        MessageType.CAMPAIGN_ADD_CONTACTS: permissions.Action.ADD_CONTACTS,
        MessageType.CAMPAIGN_REMOVE_CONTACTS: permissions.Action.REMOVE_CONTACTS,
    }[kind]


def _accepted(outcome: Change | Refusal) -> Change:
    if isinstance(outcome, Refusal):
        raise Rejected(outcome.code, outcome.detail, outcome.unmet)
    return outcome


async def _authorize(
    context: HandlerContext,
    actor: Actor | None,
    row: asyncpg.Record | None,
    action: permissions.Action,
) -> None:
    assert actor is not None  # every command contract requires one
    if row is None:
        raise Rejected("campaign_not_found", "no such campaign")
    caller = await _caller(context, actor)
    ownership = permissions.CampaignOwnership(row["created_by"], row["organization_id"])
    decision = permissions.decide(caller, ownership, action)
    if decision is permissions.Decision.INVISIBLE:
        raise Rejected("campaign_not_found", "no such campaign")
    if decision is permissions.Decision.FORBIDDEN:
        detail = _PERMISSION_DENIED.get(action, f"the caller may not {action.value} it")
        raise Rejected("permission_denied", detail)


async def _caller(context: HandlerContext, actor: Actor) -> permissions.Caller:
    if actor.organization_id is None:
        return permissions.Caller(actor.user_id, None, None)
    row = await context.connection.fetchrow(
        QUERIES["caller_context"], actor.organization_id, actor.user_id
    )
    if row is None:
        return permissions.Caller(actor.user_id, actor.organization_id, None)
    return permissions.Caller(
        actor.user_id,
        actor.organization_id,
        permissions.Role(row["role"]),
        admin_view_enabled=row["admin_view_enabled"],
    )


async def _change(
    context: HandlerContext,
    message: Decoded,
    row: asyncpg.Record,
    state: campaigns.CampaignState,
    change: Change,
    *,
    launched: bool = False,
) -> None:
    now = context.clock.now()
    connection = context.connection
    actor = message.envelope.actor
    assert actor is not None
    await connection.execute(
        QUERIES["apply_change"],
        row["id"],
        change.status.value,
        change.enabled,
        change.deleted,
        actor.user_id,
        now,
    )
    if launched:
        next_run = None
        if change.status is campaigns.CampaignStatus.SCHEDULED:
            next_run = schedules.next_run(
                state.launch_type,
                scheduled_at=row["scheduled_at"],
                recurrence=row["recurrence"],
                timezone=row["timezone"],
                now=now,
            )
        await connection.execute(QUERIES["set_launched"], row["id"], now, next_run)
    affected = await _apply_to_executions(connection, row["id"], change, now)
    event = CampaignStatusChanged(
        campaign_id=row["id"],
        previous_status=state.status.value,
        status=change.status.value,
        enabled=change.enabled,
        cause=message.envelope.type,
        previous_enabled=state.enabled,
        deleted=change.deleted,
        executions_affected=affected,
    )
    _emit(context, message, row["id"], MessageType.CAMPAIGN_STATUS_CHANGED, event)


async def _apply_to_executions(
    connection: Any, campaign_id: UUID, change: Change, now: datetime
) -> int:
    results: list[str] = []
    match change.executions:
        case ExecutionEffect.RESUME:
            results.append(await connection.execute(QUERIES["resume_executions"], campaign_id, now))
        case ExecutionEffect.RESUME_AND_RESET:
            results.append(await connection.execute(QUERIES["resume_executions"], campaign_id, now))
            results.append(
                await connection.execute(QUERIES["reset_completed_executions"], campaign_id, now)
            )
        case ExecutionEffect.PAUSE:
            results.append(await connection.execute(QUERIES["pause_executions"], campaign_id, now))
        case ExecutionEffect.CANCEL:
            results.append(
                await connection.execute(
                    QUERIES["cancel_executions"], campaign_id, now, change.reason
                )
            )
        case ExecutionEffect.NONE:
            pass
    return sum(int(status.rsplit(" ", 1)[1]) for status in results)  # "UPDATE <n>"


async def _duplicate(
    context: HandlerContext,
    message: Decoded,
    row: asyncpg.Record,
    state: campaigns.CampaignState,
    payload: CampaignDuplicate,
) -> None:
    refusal = campaigns.duplicate(state)
    if refusal is not None:
        raise Rejected(refusal.code, refusal.detail)
    actor = message.envelope.actor
    assert actor is not None
    await context.connection.execute(
        QUERIES["duplicate_campaign"],
        row["id"],
        payload.copy_id,
        actor.user_id,
        campaigns.copy_name(row["name"]),
        context.clock.now(),
    )
    event = CampaignDuplicated(campaign_id=row["id"], copy_id=payload.copy_id)
    _emit(context, message, row["id"], MessageType.CAMPAIGN_DUPLICATED, event)


async def _add_contacts(
    context: HandlerContext,
    message: Decoded,
    row: asyncpg.Record,
    state: campaigns.CampaignState,
    payload: CampaignContacts,
) -> None:
    change = _accepted(campaigns.add_contacts(state))
    actor = message.envelope.actor
    assert actor is not None
    now = context.clock.now()
    counts = await context.connection.fetchrow(
        QUERIES["add_contacts"],
        row["id"],
        payload.contact_ids,
        row["organization_id"],
        actor.user_id,
        row["telegram_account_id"],
        now,
    )
    assert counts is not None
    reactivated = change.status is not state.status
    if reactivated:
        await _change(context, message, row, state, change)
    event = CampaignContactsAdded(
        campaign_id=row["id"],
        requested=counts["requested"],
        added=counts["added"],
        skipped_duplicates=counts["visible"] - counts["added"],
        not_found=counts["requested"] - counts["visible"],
        reactivated=reactivated,
    )
    _emit(context, message, row["id"], MessageType.CAMPAIGN_CONTACTS_ADDED, event)


async def _remove_contacts(
    context: HandlerContext,
    message: Decoded,
    row: asyncpg.Record,
    state: campaigns.CampaignState,
    payload: CampaignContacts,
) -> None:
    _accepted(campaigns.remove_contacts(state))
    counts = await context.connection.fetchrow(
        QUERIES["remove_contacts"], row["id"], payload.contact_ids, context.clock.now()
    )
    assert counts is not None
    event = CampaignContactsRemoved(
        campaign_id=row["id"],
        requested=counts["requested"],
        removed=counts["removed"],
        not_in_campaign=counts["requested"] - counts["removed"],
    )
    _emit(context, message, row["id"], MessageType.CAMPAIGN_CONTACTS_REMOVED, event)


def _emit(
    context: HandlerContext,
    cause: Decoded,
    campaign_id: UUID,
    message_type: MessageType,
    payload: Payload,
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
