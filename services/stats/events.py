"""Events as the stats service applies them: each names the campaigns whose figures it changed
(refreshed once per batch, see refresh.py), and campaign-level events also enter the activity
feed. Every type on a consumed topic has a handler, so none is dead-lettered as unknown."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import get_args

from prometheus_client import Counter

from services.stats.refresh import touched
from shared.db.sql import Queries
from shared.messaging.consumer import HandlerContext, as_batch, takes_batches
from shared.messaging.contracts import (
    AccountChecked,
    AccountHealthChanged,
    AccountLoginProgressed,
    AccountTestSent,
    BulkActionProgress,
    BulkEvent,
    CampaignCommandRejected,
    CampaignContactsAdded,
    CampaignContactsRemoved,
    CampaignDuplicated,
    CampaignEvent,
    CampaignStatusChanged,
    CampaignStatusName,
    Decoded,
    ExecutionEvent,
    OrganizationEvent,
    contracts_on,
)
from shared.messaging.topics import Topic

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

CAMPAIGN_TRANSITIONS = Counter(
    "dripline_campaign_transitions_total", "Campaign status changes", ["status", "cause"]
)
COMMANDS_REJECTED = Counter(
    "dripline_campaign_commands_rejected_total", "Rejected campaign commands", ["command", "code"]
)
# Series that exist from the start, so a first change shows in rate(): every status a lifecycle
# command can lead to, by that command.
for _command in contracts_on(Topic.CAMPAIGN_COMMANDS):
    for _status in get_args(CampaignStatusName):
        CAMPAIGN_TRANSITIONS.labels(_status, _command.type.value)


@takes_batches
async def on_execution_events(
    context: HandlerContext,
    messages: Decoded[ExecutionEvent] | Sequence[Decoded[ExecutionEvent]],
) -> None:
    batch = touched(context)
    for message in as_batch(messages):
        event = message.payload
        at = message.envelope.occurred_at
        batch.event(message.contract.topic.value, at)
        batch.execution(event.campaign_id, event.execution_id, at)


@takes_batches
async def on_campaign_events(
    context: HandlerContext,
    messages: Decoded[CampaignEvent] | Sequence[Decoded[CampaignEvent]],
) -> None:
    batch = touched(context)
    for message in as_batch(messages):
        event, at = message.payload, message.envelope.occurred_at
        batch.event(message.contract.topic.value, at)
        summary = _summary(message)
        if summary is not None:
            await context.connection.execute(
                QUERIES["record_activity"],
                event.campaign_id,
                message.envelope.message_id,
                message.envelope.type,
                summary,
                event.model_dump(mode="json"),
                at,
            )
        if isinstance(event, CampaignCommandRejected):
            COMMANDS_REJECTED.labels(event.command, event.code).inc()
            continue  # nothing changed
        if isinstance(event, CampaignStatusChanged):
            CAMPAIGN_TRANSITIONS.labels(event.status, event.cause).inc()
            if _changed_no_execution(event):
                continue
        if isinstance(event, CampaignDuplicated):
            batch.campaign(event.copy_id, at)
        batch.campaign(event.campaign_id, at)


def _changed_no_execution(event: CampaignStatusChanged) -> bool:
    """A command's own report that it changed no execution (the scheduler's sweeps, such as a
    recurring run's reset, do not count theirs, so those are recounted)."""
    command = event.cause.startswith(("campaign.", "bulk_operation."))
    return command and event.executions_affected == 0


def _summary(message: Decoded[CampaignEvent]) -> str | None:
    event = message.payload
    if isinstance(event, CampaignStatusChanged):
        return _status_summary(event)
    if isinstance(event, CampaignCommandRejected):
        return f"{event.command} rejected: {event.detail}"
    if isinstance(event, CampaignContactsAdded):
        reactivated = "; the campaign is active again" if event.reactivated else ""
        return (
            f"{event.added} of {event.requested} contacts added "
            f"({event.skipped_duplicates} already in, {event.skipped_do_not_contact} on the "
            f"do-not-contact list, {event.skipped_recently_contacted} recently contacted, "
            f"{event.not_found} not found){reactivated}"
        )
    if isinstance(event, CampaignContactsRemoved):
        return f"{event.removed} of {event.requested} contacts removed"
    if isinstance(event, CampaignDuplicated):
        return f"Duplicated as {event.copy_id}"
    return None


def _status_summary(event: CampaignStatusChanged) -> str:
    if event.status != event.previous_status:
        return f"Status changed from {event.previous_status} to {event.status}"
    if event.cause == "campaign.delete":
        return "Campaign deleted"
    if event.cause == "campaign.restore":
        return "Campaign restored"
    if event.enabled != event.previous_enabled:
        cancelled = (
            f"; {event.executions_affected} executions cancelled" if not event.enabled else ""
        )
        return f"Campaign {'enabled' if event.enabled else 'disabled'}{cancelled}"
    return f"{event.cause} applied; nothing had to change"


@takes_batches
async def on_account_events(
    context: HandlerContext,
    messages: Decoded[AccountHealthChanged] | Sequence[Decoded[AccountHealthChanged]],
) -> None:
    batch = touched(context)
    for message in as_batch(messages):
        event = message.payload
        batch.event(message.contract.topic.value, message.envelope.occurred_at)
        until = f" until {event.cooldown_until.isoformat()}" if event.cooldown_until else ""
        detail = f": {event.detail}" if event.detail else ""
        await context.connection.execute(
            QUERIES["record_account_activity"],
            str(message.envelope.message_id),
            message.envelope.type,
            f"Sending account went from {event.previous_status} to {event.status}{until}{detail}",
            event.model_dump(mode="json"),
            message.envelope.occurred_at,
            event.telegram_account_id,
        )


@takes_batches
async def on_organization_events(
    context: HandlerContext,
    messages: Decoded[OrganizationEvent] | Sequence[Decoded[OrganizationEvent]],
) -> None:
    """The fleet breaker paused or resumed a context's sending: news in the feed of its
    unfinished campaigns; no figure changes."""
    batch = touched(context)
    for message in as_batch(messages):
        event = message.payload
        batch.event(message.contract.topic.value, message.envelope.occurred_at)
        if event.reason is not None:
            summary = f"Sending paused by the fleet breaker: {event.reason}"
        else:
            summary = (
                f"Sending resumed: the fleet breaker reset ({event.troubled} of {event.sending}"
                " sending accounts in trouble within the last hour)"
            )
        await context.connection.execute(
            QUERIES["record_context_activity"],
            str(message.envelope.message_id),
            message.envelope.type,
            summary,
            event.model_dump(mode="json"),
            message.envelope.occurred_at,
            event.organization_id,
            event.user_id,
        )


@takes_batches
async def on_account_checked(
    context: HandlerContext,
    messages: Decoded[AccountChecked | AccountLoginProgressed | AccountTestSent]
    | Sequence[Decoded[AccountChecked | AccountLoginProgressed | AccountTestSent]],
) -> None:
    """A health check's or a login's answer changes no figure (a transition either made is its
    own account.health_changed), nor does a test send's (it is no message to a contact); it
    still counts as the topic's progress."""
    batch = touched(context)
    for message in as_batch(messages):
        batch.event(message.contract.topic.value, message.envelope.occurred_at)


@takes_batches
async def on_bulk_events(
    context: HandlerContext, messages: Decoded[BulkEvent] | Sequence[Decoded[BulkEvent]]
) -> None:
    """A bulk action's batch changes executions without an event of their own;
    bulk operations over campaigns emit campaign.status_changed per campaign, counted there."""
    batch = touched(context)
    for message in as_batch(messages):
        event, at = message.payload, message.envelope.occurred_at
        batch.event(message.contract.topic.value, at)
        if isinstance(event, BulkActionProgress) and event.batch_size > 0:
            for row in await context.connection.fetch(
                QUERIES["bulk_action_executions"], event.action_id, event.batch
            ):
                batch.execution(row["campaign_id"], row["execution_id"], at)
