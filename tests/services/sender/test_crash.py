"""A sender that dies mid-send: the send record written before the network call is reconciled
when the execution is claimed again, never blindly resent; and stale due events are ignored."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.sender.app import create_service
from services.sender.gateway import Account, Peer
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer, HandlerContext
from shared.messaging.contracts import MessageType, decode
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.builders import FLOW
from tests.services.builders import due_record

NOW = datetime.now(UTC).replace(microsecond=0)


async def seed(pool: asyncpg.Pool[Any], lease: datetime) -> tuple[UUID, UUID, UUID]:
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('s@example.com') RETURNING id")
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        {"min_gap_s": 0, "jitter_s": 0},
    )
    campaign = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow)"
        " VALUES ($1, 'c', 'active', $2, $3) RETURNING id",
        user,
        account,
        FLOW,
    )
    contact = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
        " VALUES ($1, 'crashy', 'Cy') RETURNING id",
        user,
    )
    execution = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at, lease_until)"
        " VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
        campaign,
        contact,
        NOW,
        lease,
    )
    return account, campaign, execution


@pytest.mark.parametrize("telegram_got_it", [False, True], ids=["before-send", "after-send"])
async def test_a_send_cut_short_by_a_crash_is_reconciled_not_repeated(
    pool: asyncpg.Pool[Any], telegram_got_it: bool
) -> None:
    first_lease = NOW + timedelta(seconds=60)
    account, campaign, execution = await seed(pool, first_lease)
    service = create_service(Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y"))
    service._pool = pool  # as if started
    handler = service.handlers[Topic.EXECUTIONS_DUE][MessageType.EXECUTION_DUE.value]

    # The first attempt commits its send record and dies before its work after the commit.
    decoded = decode(
        Topic.EXECUTIONS_DUE, due_record(execution, campaign, account, first_lease).value
    )
    async with pool.acquire() as connection, connection.transaction():
        context = HandlerContext(connection, Outbox(), FixedClock(NOW), "sender")
        await handler(context, decoded)
        assert len(context.after_commit) == 1  # the send, never run: the process died
    record = await pool.fetchrow("SELECT id, status, random_id, body FROM messages")
    assert record is not None
    assert record["status"] == "queued"
    if telegram_got_it:
        # The network call had reached Telegram before the crash.
        gateway = service_gateway(service)
        sim = Account(account, "simulated", {})
        await gateway.send(sim, Peer("crashy", uuid4()), record["body"], record["random_id"], NOW)

    # The lease runs out; the scheduler claims the execution again with a new lease.
    second_lease = NOW + timedelta(seconds=180)
    await pool.execute(
        "UPDATE executions SET lease_until = $2 WHERE id = $1", execution, second_lease
    )
    consumer = BatchConsumer(
        name="sender",
        topic=Topic.EXECUTIONS_DUE,
        handlers=service.handlers[Topic.EXECUTIONS_DUE],
        pool=pool,
        clock=FixedClock(NOW + timedelta(seconds=120)),
    )
    stale = due_record(execution, campaign, account, first_lease)
    await consumer.process([stale])  # the old claim's event, redelivered: ignored
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == (
        1 if telegram_got_it else 0
    )
    await consumer.process([due_record(execution, campaign, account, second_lease)])

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 1
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1
    assert await pool.fetchval("SELECT status FROM messages") == "sent"
    row = await pool.fetchrow("SELECT status, current_node_id FROM executions")
    assert row is not None
    assert (row["status"], row["current_node_id"]) == ("waiting", "wait")
    sent_events = await pool.fetch(
        "SELECT value FROM outbox WHERE headers->>'message-type' = 'message.sent'"
    )
    assert len(sent_events) == 1
    assert json.loads(bytes(sent_events[0]["value"]))["payload"]["node_id"] == "hello"


def service_gateway(service: Any) -> Any:
    """The simulator the sender service was built with (behind its due handler)."""
    handler = service.handlers[Topic.EXECUTIONS_DUE][MessageType.EXECUTION_DUE.value]
    return handler.__self__.gateway
