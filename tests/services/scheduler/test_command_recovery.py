"""A lifecycle command the API accepted (202) whose message the broker lost after the relay had
marked it sent is still applied: the scheduler's sweep applies it from its outbox record,
through the consumer's own path, once. So is a bulk operation the API accepted: the scheduler
records it (as asked for over HTTP) and runs it."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.api.accounts import create_user_with_key
from services.scheduler.app import create_service
from shared.domain.bulk_operations import BulkAction
from shared.domain.clock import SystemClock
from shared.messaging.contracts import BulkOperationRequest, CampaignCommand, MessageType, Payload
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.outbox import record_for
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.builders import FLOW
from tests.support import eventually


async def an_active_campaign(pool: asyncpg.Pool[Any], user: UUID) -> UUID:
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, flow, launched_at)"
        " VALUES ($1, 'c', 'active', $2, now()) RETURNING id",
        user,
        FLOW,
    )
    return campaign


async def command_record(
    pool: asyncpg.Pool[Any],
    user: UUID,
    campaign: UUID,
    kind: MessageType,
    *,
    sent_s_ago: float,
) -> UUID:
    """A command as the API writes it, already marked sent by the relay `sent_s_ago` seconds
    ago; no broker ever carried it."""
    return await outbox_record(
        pool, user, Topic.CAMPAIGN_COMMANDS, campaign, kind, CampaignCommand(campaign_id=campaign),
        sent_s_ago=sent_s_ago,
    )  # fmt: skip


async def outbox_record(
    pool: asyncpg.Pool[Any],
    user: UUID,
    topic: Topic,
    key: UUID,
    kind: MessageType,
    payload: Payload,
    *,
    sent_s_ago: float,
) -> UUID:
    envelope = new_envelope(
        type=kind,
        payload=payload,
        occurred_at=SystemClock().now(),
        actor=Actor(user_id=user, organization_id=None),
        correlation_id=uuid4(),
    )
    record = record_for(topic, str(key), envelope)
    await pool.execute(
        "INSERT INTO outbox (topic, key, value, headers, message_id, created_at, sent_at)"
        " VALUES ($1, $2, $3, $4, $5, now() - make_interval(secs => $6 + 1),"
        "         now() - make_interval(secs => $6))",
        record.topic,
        record.key.encode() if record.key else None,
        record.value,
        record.headers,
        envelope.message_id,
        sent_s_ago,
    )
    return envelope.message_id


async def test_a_command_lost_by_the_broker_is_applied_from_its_record(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        user = (await create_user_with_key(connection, "lost@example.com")).user_id
    lost_pause = await an_active_campaign(pool, user)
    consumed_stop = await an_active_campaign(pool, user)
    fresh_stop = await an_active_campaign(pool, user)
    pause_id = await command_record(
        pool, user, lost_pause, MessageType.CAMPAIGN_PAUSE, sent_s_ago=60
    )
    # Consumed already (its id is in the scheduler's inbox): applying it again would be wrong.
    stop_id = await command_record(
        pool, user, consumed_stop, MessageType.CAMPAIGN_STOP, sent_s_ago=60
    )
    await pool.execute(
        "INSERT INTO inbox (consumer, message_id, topic) VALUES ('scheduler', $1, $2)",
        stop_id,
        Topic.CAMPAIGN_COMMANDS.value,
    )
    # Sent a moment ago: its message may still be on its way, so it is not the sweep's yet.
    await command_record(pool, user, fresh_stop, MessageType.CAMPAIGN_STOP, sent_s_ago=0)

    service = create_service(settings)
    async with service.running():

        async def paused() -> bool:
            status = await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", lost_pause)
            return bool(status == "paused")

        await eventually(paused, timeout_s=20)
        # Several more sweeps (every 0.2 s): nothing is applied twice, nothing else is applied.
        await asyncio.sleep(1.5)

    statuses = dict(
        await pool.fetch(
            "SELECT id, status FROM campaigns WHERE id = ANY($1)",
            [lost_pause, consumed_stop, fresh_stop],
        )
    )
    assert statuses == {lost_pause: "paused", consumed_stop: "active", fresh_stop: "active"}
    # Answered as if consumed: one status change caused by the lost command, and its id is in
    # the inbox, so the real message arriving late is a duplicate.
    outcomes = await pool.fetch(
        "SELECT value FROM outbox WHERE topic = $1 AND convert_from(value, 'UTF8')::jsonb"
        " ->> 'causation_id' = $2",
        Topic.CAMPAIGN_EVENTS.value,
        str(pause_id),
    )
    assert len(outcomes) == 1
    assert b'"campaign.status_changed"' in outcomes[0]["value"]
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'scheduler' AND message_id = $1", pause_id
        )
        == 1
    )


async def test_a_bulk_operation_lost_by_the_broker_is_recorded_and_run_from_its_record(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        user = (await create_user_with_key(connection, "lost-bulk@example.com")).user_id
    running = await an_active_campaign(pool, user)
    operation = uuid4()
    request = BulkOperationRequest(operation_id=operation, action=BulkAction.STOP,
                                   campaign_ids=[running])  # fmt: skip
    command_id = await outbox_record(
        pool, user, Topic.BULK_COMMANDS, operation, MessageType.BULK_OPERATION_REQUESTED, request,
        sent_s_ago=60,
    )  # fmt: skip

    service = create_service(settings)
    async with service.running():

        async def recorded() -> Any:
            return await pool.fetchrow(
                "SELECT status, origin, requested_by, total, success_count FROM bulk_operations"
                " WHERE id = $1 AND status = 'completed'",
                operation,
            )

        row = await eventually(recorded, timeout_s=20)
        await asyncio.sleep(1.0)  # more sweeps: applied once

    # Its command is in this database's outbox: the API published it, on an HTTP request.
    assert dict(row) == {"status": "completed", "origin": "http", "requested_by": user,
                         "total": 1, "success_count": 1}  # fmt: skip
    assert await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", running) == (
        "cancelled"
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'scheduler' AND message_id = $1",
            command_id,
        )
        == 1
    )
    closed = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND key = convert_to($2, 'UTF8')"
        " AND headers->>'message-type' = 'bulk_operation.completed'",
        Topic.BULK_EVENTS.value,
        str(operation),
    )
    assert closed == 1
