"""The outbox relay against real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from shared.messaging.contracts import CampaignLaunch
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.kafka import relay_producer
from shared.messaging.outbox import Outbox, OutboxRelay
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.support import eventually, read_topic, topic


def launch_command(campaign_id: str) -> Any:
    return new_envelope(
        type="campaign.launch",
        payload=CampaignLaunch(campaign_id=UUID(campaign_id)),
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id=uuid4()),
    )


async def write(pool: asyncpg.Pool[Any], envelopes: list[tuple[str, Any]]) -> None:
    async with pool.acquire() as connection, connection.transaction():
        outbox = Outbox()
        for key, envelope in envelopes:
            outbox.add(Topic.CAMPAIGN_COMMANDS, key, envelope)
        await outbox.flush(connection)


async def unsent(pool: asyncpg.Pool[Any]) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def test_relay_publishes_in_order_per_key_and_marks_sent(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    keys = [str(uuid4()) for _ in range(3)]
    written = [(keys[i % 3], launch_command(keys[i % 3])) for i in range(30)]
    await write(pool, written)
    producer = relay_producer(settings)
    await producer.start()
    try:
        relay = OutboxRelay(pool, producer, topic_prefix=settings.topic_prefix,
                            poll_interval_s=0.2)  # fmt: skip
        task = asyncio.create_task(relay.run())
        await eventually(lambda: _zero(unsent(pool)))
        records = await read_topic(
            settings.bootstrap_servers, topic(settings, Topic.CAMPAIGN_COMMANDS), expected=30
        )
        # Written later, while the relay waits: NOTIFY wakes it before the poll would.
        late = launch_command(keys[0])
        await write(pool, [(keys[0], late)])
        await eventually(lambda: _zero(unsent(pool)), timeout_s=5)
        task.cancel()
        await relay.drain()
    finally:
        await producer.stop()
    assert len(records) == 30
    for key in keys:
        expected = [str(e.message_id) for k, e in written if k == key]
        seen = [json.loads(r.value)["message_id"] for r in records if r.key == key.encode()]
        assert seen == expected
    headers = dict(records[0].headers)
    assert headers["message-type"] == b"campaign.launch"


async def _zero(count: Any) -> bool:
    return bool(await count == 0)


async def test_only_one_relay_leads_per_database(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    producer = relay_producer(settings)
    await producer.start()
    try:
        first = OutboxRelay(pool, producer, topic_prefix=settings.topic_prefix,
                            poll_interval_s=0.1)  # fmt: skip
        second = OutboxRelay(pool, producer, topic_prefix=settings.topic_prefix,
                             poll_interval_s=0.1)  # fmt: skip
        tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
        await eventually(lambda: _async(first.is_leader or second.is_leader))
        await asyncio.sleep(0.5)
        assert [first.is_leader, second.is_leader].count(True) == 1
        leader, standby = (first, second) if first.is_leader else (second, first)
        # When the leader steps down, the standby takes over.
        tasks[0 if leader is first else 1].cancel()
        await leader.drain()
        await eventually(lambda: _async(standby.is_leader), timeout_s=5)
        tasks[1 if leader is first else 0].cancel()
        await standby.drain()
    finally:
        await producer.stop()


async def _async(value: bool) -> bool:
    return bool(value)


async def test_the_leader_forgets_old_published_records_and_old_message_ids(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    await write(pool, [(str(uuid4()), launch_command(str(uuid4()))) for _ in range(3)])
    now = datetime.now(UTC)
    await pool.execute(
        "UPDATE outbox SET sent_at = $1 WHERE id = (SELECT min(id) FROM outbox)",
        now - timedelta(hours=2),
    )
    await pool.execute(
        "UPDATE outbox SET sent_at = $1 WHERE id = (SELECT max(id) FROM outbox)",
        now - timedelta(minutes=5),
    )
    await pool.execute(
        "INSERT INTO inbox (consumer, message_id, topic, received_at)"
        " VALUES ('c', $1, 't', $2), ('c', $3, 't', $4)",
        uuid4(), now - timedelta(days=8), uuid4(), now - timedelta(days=1),
    )  # fmt: skip
    relay = OutboxRelay(pool, relay_producer(settings), topic_prefix="", poll_interval_s=1,
                        outbox_retention_s=3600, inbox_retention_s=7 * 86400)  # fmt: skip
    assert await relay.forget_old(now) == 2
    left = await pool.fetch("SELECT sent_at IS NULL AS unsent FROM outbox ORDER BY id")
    assert [r["unsent"] for r in left] == [True, False]  # the unsent one and the recent one
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1
