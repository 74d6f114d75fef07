"""Campaign events as the stats service records them: the activity feed and counters."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import Counter

from shared.db.sql import Queries
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import CampaignCommandRejected, CampaignStatusChanged, Decoded

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))

CAMPAIGN_TRANSITIONS = Counter(
    "dripline_campaign_transitions_total", "Campaign status changes", ["status", "cause"]
)
COMMANDS_REJECTED = Counter(
    "dripline_campaign_commands_rejected_total", "Rejected campaign commands", ["command", "code"]
)


async def on_status_changed(context: HandlerContext, message: Decoded) -> None:
    event = message.payload
    assert isinstance(event, CampaignStatusChanged)
    await context.connection.execute(
        QUERIES["record_activity"],
        event.campaign_id,
        message.envelope.message_id,
        message.envelope.type,
        _summary(event),
        event.model_dump(mode="json"),
        message.envelope.occurred_at,
    )
    if event.cause == "campaign.launch":
        await context.connection.execute(
            QUERIES["count_launch"], event.campaign_id, message.envelope.occurred_at
        )
    CAMPAIGN_TRANSITIONS.labels(event.status, event.cause).inc()


def _summary(event: CampaignStatusChanged) -> str:
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


async def on_command_rejected(context: HandlerContext, message: Decoded) -> None:
    event = message.payload
    assert isinstance(event, CampaignCommandRejected)
    await context.connection.execute(
        QUERIES["record_activity"],
        event.campaign_id,
        message.envelope.message_id,
        message.envelope.type,
        f"{event.command} rejected: {event.detail}",
        event.model_dump(mode="json"),
        message.envelope.occurred_at,
    )
    COMMANDS_REJECTED.labels(event.command, event.code).inc()
