"""Lifecycle commands on campaigns, applied by the scheduler (the single writer of status).

Each command runs in the consumer's transaction, the one way of changes.py: lock the campaign,
check the actor's permission (exactly as the API does), ask the state machine, apply the change
to the campaign and its executions and emit its status event, and emit the command's outcome,
or a rejection, with the command's correlation id.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from services.scheduler.actors import caller_of
from services.scheduler.changes import Accepted, Locked, apply_changes, lock_one
from shared.db import campaigns as campaign_reads
from shared.db.sql import Queries
from shared.domain import campaigns, permissions
from shared.domain.campaigns import Change, Refusal
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    CampaignCommandPayload,
    CampaignCommandRejected,
    CampaignContacts,
    CampaignContactsAdded,
    CampaignContactsRemoved,
    CampaignDuplicate,
    CampaignDuplicated,
    CampaignLaunch,
    Decoded,
    MessageType,
    Unmet,
)
from shared.messaging.envelope import Actor

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
ENROLMENT = Queries.load(Path(__file__).with_name("enrolment.sql"))  # shared with bulk_actions

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


async def on_command(context: HandlerContext, message: Decoded[CampaignCommandPayload]) -> None:
    """Every campaign command; rejections become events, never dead letters."""
    campaign_id = message.payload.campaign_id
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
        context.outbox.emit(event, key=campaign_id, cause=message.envelope)


async def _apply(
    context: HandlerContext, message: Decoded[CampaignCommandPayload], campaign_id: UUID
) -> None:
    kind = MessageType(message.envelope.type)
    campaign = await lock_one(context.connection, campaign_id)
    action = _action(kind)
    await _authorize(context, message.envelope.actor, campaign, action)
    assert campaign is not None
    state = campaign.state
    payload = message.payload
    if isinstance(payload, CampaignLaunch):
        readiness = await campaign_reads.readiness(context.connection, campaign_id)
        outcome = campaigns.launch(state, readiness, reset_completed=payload.reset_completed)
        await _change(context, message, campaign, _accepted(outcome), launched=True)
    elif isinstance(payload, CampaignDuplicate):
        await _duplicate(context, message, campaign, payload)
    elif isinstance(payload, CampaignContacts) and kind is MessageType.CAMPAIGN_ADD_CONTACTS:
        await _add_contacts(context, message, campaign, payload)
    elif isinstance(payload, CampaignContacts):
        await _remove_contacts(context, message, campaign, payload)
    else:  # a CampaignCommand: the rule of its type decides
        await _change(context, message, campaign, _accepted(SIMPLE[kind][1](state)))


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
    campaign: Locked | None,
    action: permissions.Action,
) -> None:
    assert actor is not None  # every command contract requires one
    if campaign is None:
        raise Rejected("campaign_not_found", "no such campaign")
    caller = await caller_of(context.connection, actor)
    decision = permissions.decide(caller, campaign.ownership, action)
    if decision is permissions.Decision.INVISIBLE:
        raise Rejected("campaign_not_found", "no such campaign")
    if decision is permissions.Decision.FORBIDDEN:
        detail = _PERMISSION_DENIED.get(action, f"the caller may not {action.value} it")
        raise Rejected("permission_denied", detail)


async def _change(
    context: HandlerContext,
    message: Decoded[CampaignCommandPayload],
    campaign: Locked,
    change: Change,
    *,
    launched: bool = False,
) -> None:
    actor = message.envelope.actor
    assert actor is not None
    await apply_changes(
        context,
        [Accepted(campaign, change)],
        actor.user_id,
        context.clock.now(),
        command=message.envelope.type,
        cause=message.envelope,
        launched=launched,
    )


async def _duplicate(
    context: HandlerContext,
    message: Decoded[CampaignCommandPayload],
    campaign: Locked,
    payload: CampaignDuplicate,
) -> None:
    row = campaign.row
    refusal = campaigns.duplicate(campaign.state)
    if refusal is None and payload.unfinished_only:
        refusal = campaigns.copy_unfinished(campaign.state)
    if refusal is not None:
        raise Rejected(refusal.code, refusal.detail)
    actor = message.envelope.actor
    assert actor is not None
    now = context.clock.now()
    await context.connection.execute(
        QUERIES["duplicate_campaign"],
        row["id"],
        payload.copy_id,
        actor.user_id,
        campaigns.copy_name(row["name"]),
        now,
    )
    added = 0
    if payload.unfinished_only:
        # Run again as a copy: its contacts that never finished, enrolled as add_contacts does
        # (visibility, do-not-contact and recontact rules included), in this transaction.
        unfinished = await context.connection.fetch(QUERIES["unfinished_contacts"], row["id"])
        if unfinished:
            enrolled = await context.connection.fetch(
                ENROLMENT["add_contacts"],
                payload.copy_id,
                [r["contact_id"] for r in unfinished],
                row["organization_id"],
                actor.user_id,
                row["telegram_account_id"],
                now,
            )
            added = sum(1 for c in enrolled if c["added"])
    event = CampaignDuplicated(campaign_id=row["id"], copy_id=payload.copy_id, contacts_added=added)
    context.outbox.emit(event, key=row["id"], cause=message.envelope)


async def _add_contacts(
    context: HandlerContext,
    message: Decoded[CampaignCommandPayload],
    campaign: Locked,
    payload: CampaignContacts,
) -> None:
    row, state = campaign.row, campaign.state
    change = _accepted(campaigns.add_contacts(state))
    actor = message.envelope.actor
    assert actor is not None
    now = context.clock.now()
    contacts = await context.connection.fetch(
        ENROLMENT["add_contacts"],
        row["id"],
        payload.contact_ids,
        row["organization_id"],
        actor.user_id,
        row["telegram_account_id"],
        now,
    )
    counts = {
        "requested": len(contacts),
        "visible": sum(1 for c in contacts if c["visible"]),
        "added": sum(1 for c in contacts if c["added"]),
        "listed": sum(1 for c in contacts if c["do_not_contact"]),
        "recent": sum(1 for c in contacts if c["recently_contacted"]),
        "elsewhere": sum(1 for c in contacts if c["in_other_active_campaign"]),
    }
    reactivated = change.status is not state.status
    if reactivated:
        await _change(context, message, campaign, change)
    event = CampaignContactsAdded(
        campaign_id=row["id"],
        requested=counts["requested"],
        added=counts["added"],
        skipped_duplicates=counts["visible"]
        - counts["added"]
        - counts["listed"]
        - counts["recent"],
        skipped_do_not_contact=counts["listed"],
        skipped_recently_contacted=counts["recent"],
        in_other_active_campaigns=counts["elsewhere"],
        not_found=counts["requested"] - counts["visible"],
        reactivated=reactivated,
    )
    context.outbox.emit(event, key=row["id"], cause=message.envelope)


async def _remove_contacts(
    context: HandlerContext,
    message: Decoded[CampaignCommandPayload],
    campaign: Locked,
    payload: CampaignContacts,
) -> None:
    row = campaign.row
    _accepted(campaigns.remove_contacts(campaign.state))
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
    context.outbox.emit(event, key=row["id"], cause=message.envelope)
