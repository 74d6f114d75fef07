"""Commands from other systems over Kafka: checked like HTTP calls, rejected ones dead-lettered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from shared.messaging.contracts import CampaignLaunch
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from tests.builders import launchable
from tests.e2e.conftest import Stack
from tests.support import produce, read_topic, topic


async def events_for(stack: Stack, correlation_id: UUID, expected: int) -> list[dict[str, Any]]:
    records = await read_topic(
        stack.settings.bootstrap_servers, topic(stack.settings, Topic.CAMPAIGN_EVENTS),
        expected=expected,
    )  # fmt: skip
    events = [json.loads(r.value) for r in records]
    return [e for e in events if e["correlation_id"] == str(correlation_id)]


async def test_a_command_breaking_the_contract_lands_in_the_dlq_with_the_reason(
    stack: Stack,
) -> None:
    source = topic(stack.settings, Topic.CAMPAIGN_COMMANDS)
    await produce(stack.settings.bootstrap_servers, source, b'{"type": "campaign.launch"}', b"k1")
    [letter] = await read_topic(
        stack.settings.bootstrap_servers, topic(stack.settings, Topic.CAMPAIGN_COMMANDS.dlq),
        expected=1,
    )  # fmt: skip
    headers = {k: v.decode() for k, v in letter.headers}
    assert letter.value == b'{"type": "campaign.launch"}'
    assert letter.key == b"k1"
    assert headers["dlq-reason"].startswith("invalid envelope: message_id")
    assert headers["dlq-source-topic"] == source
    assert headers["dlq-consumer"] == "scheduler"


async def test_the_actor_of_a_kafka_command_is_checked_like_an_http_caller(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    campaign = await launchable(stack.api, "k")
    stranger = await pool.fetchval(
        "INSERT INTO users (email) VALUES ('s@example.com') RETURNING id"
    )
    commands = topic(stack.settings, Topic.CAMPAIGN_COMMANDS)

    def launch_by(user_id: UUID) -> Any:
        return new_envelope(
            type="campaign.launch",
            payload=CampaignLaunch(campaign_id=campaign["id"]),
            occurred_at=datetime.now(UTC),
            actor=Actor(user_id=user_id),
            correlation_id=uuid4(),
        )

    refused, allowed = launch_by(stranger), launch_by(stack.user_id)
    bootstrap = stack.settings.bootstrap_servers
    await produce(bootstrap, commands, refused.to_bytes(), campaign["id"].encode())
    await produce(bootstrap, commands, allowed.to_bytes(), campaign["id"].encode())

    # On the events topic: contacts added (by launchable), the rejection, the launch.
    [rejection] = await events_for(stack, refused.correlation_id, expected=3)
    assert rejection["type"] == "campaign.command_rejected"
    assert rejection["payload"]["code"] == "campaign_not_found"  # may not even view it
    [changed] = await events_for(stack, allowed.correlation_id, expected=3)
    assert changed["type"] == "campaign.status_changed"
    assert changed["causation_id"] == str(allowed.message_id)
    status = await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign["id"])
    assert status == "active"
