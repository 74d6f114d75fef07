"""The outbox relay against real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from dripline.infra import EmbeddedBroker, free_port
from shared.db.pool import create_pool
from shared.messaging.contracts import CampaignLaunch
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.kafka import ensure_topics, relay_producer
from shared.messaging.outbox import REPUBLISHED, Outbox, OutboxRelay
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
        relay = OutboxRelay(pool, producer, bootstrap_servers=settings.bootstrap_servers,
                            topic_prefix=settings.topic_prefix, poll_interval_s=0.2)  # fmt: skip
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
        first = OutboxRelay(pool, producer, bootstrap_servers=settings.bootstrap_servers,
                            topic_prefix=settings.topic_prefix, poll_interval_s=0.1)  # fmt: skip
        second = OutboxRelay(pool, producer, bootstrap_servers=settings.bootstrap_servers,
                             topic_prefix=settings.topic_prefix, poll_interval_s=0.1)  # fmt: skip
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
                        bootstrap_servers=settings.bootstrap_servers,
                        outbox_retention_s=3600, inbox_retention_s=7 * 86400)  # fmt: skip
    assert await relay.forget_old(now) == 2
    left = await pool.fetch("SELECT sent_at IS NULL AS unsent FROM outbox ORDER BY id")
    assert [r["unsent"] for r in left] == [True, False]  # the unsent one and the recent one
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 1


class ThreadedRelay:
    """A relay on an event loop of its own in a thread, with its own pool and producer, so
    blocking that thread freezes this relay alone, as SIGSTOP freezes a process: its database
    connections and its broker connection stay open, and nothing of it runs.

    `freeze()` freezes it at once (idle, as a rule); `freeze_mid_pass()` freezes it when it
    next starts a producer batch: it has fetched unsent records and not yet handed them to the
    producer."""

    def __init__(self, settings: Settings, *, lease_s: float) -> None:
        self._settings = settings
        self._lease_s = lease_s
        self._ready = threading.Event()
        self.frozen = threading.Event()
        self._thawed = threading.Event()
        self._freeze_in_batch = False
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.relay: OutboxRelay | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self._ready.wait(30), "the threaded relay did not start"

    async def _main(self) -> None:
        settings = self._settings
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        pool = await create_pool(settings.dsn, min_size=1, max_size=3)
        producer = relay_producer(settings)
        await producer.start()
        create_batch = producer.create_batch

        def freezing_create_batch() -> Any:
            if self._freeze_in_batch:
                self._freeze_in_batch = False
                self._block()
            return create_batch()

        producer.create_batch = freezing_create_batch
        self.relay = OutboxRelay(
            pool, producer, bootstrap_servers=settings.bootstrap_servers,
            topic_prefix=settings.topic_prefix, poll_interval_s=0.1, lease_s=self._lease_s,
            holder="paused",
        )  # fmt: skip
        task = asyncio.create_task(self.relay.run())
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.relay.drain()
            await producer.stop()
            await pool.close()

    def _block(self) -> None:
        self.frozen.set()
        self._thawed.wait()

    def freeze(self) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._block)
        assert self.frozen.wait(10)

    def freeze_mid_pass(self) -> None:
        self._freeze_in_batch = True

    def thaw(self) -> None:
        self._thawed.set()

    def stop(self) -> None:
        self._thawed.set()
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.mark.parametrize("paused", ["idle", "mid-pass"])
async def test_a_paused_leader_is_replaced_after_its_lease_and_publishes_nothing_on_resuming(
    pool: asyncpg.Pool[Any], settings: Settings, paused: str
) -> None:
    lease_s = 1.5
    commands = topic(settings, Topic.CAMPAIGN_COMMANDS)
    old = ThreadedRelay(settings, lease_s=lease_s)
    old.start()
    producer = relay_producer(settings)
    await producer.start()
    new = OutboxRelay(pool, producer, bootstrap_servers=settings.bootstrap_servers,
                      topic_prefix=settings.topic_prefix, poll_interval_s=0.1,
                      lease_s=lease_s)  # fmt: skip
    task: asyncio.Task[None] | None = None
    try:
        await eventually(lambda: _async(old.relay is not None and old.relay.is_leader))
        task = asyncio.create_task(new.run())
        await asyncio.sleep(0.5)
        assert not new.is_leader  # the lease is held, and renewed
        keys = [str(uuid4()) for _ in range(4)]
        written = [(keys[i % 4], launch_command(keys[i % 4])) for i in range(20)]
        if paused == "idle":
            old.freeze()
            await write(pool, written)
        else:
            old.freeze_mid_pass()
            await write(pool, written)
            assert old.frozen.wait(10)
        frozen_at = time.monotonic()
        await eventually(lambda: _async(new.is_leader), timeout_s=lease_s + 5)
        took_over_s = time.monotonic() - frozen_at
        await eventually(lambda: _zero(unsent(pool)), timeout_s=5)
        assert took_over_s < lease_s + 1.0  # the lease, plus a poll and a claim

        old.thaw()
        assert old.relay is not None
        await eventually(lambda: _async(old.relay is not None and not old.relay.is_leader))
        later = [(keys[0], launch_command(keys[0])) for _ in range(5)]
        await write(pool, later)
        await eventually(lambda: _zero(unsent(pool)), timeout_s=5)
        await asyncio.sleep(1.0)  # time for a resumed leader to publish, if it were to
        records = await read_topic(
            settings.bootstrap_servers, commands, expected=len(written) + len(later) + 1,
            timeout_s=3,
        )  # fmt: skip
        assert new.is_leader
        assert not old.relay.is_leader
    finally:
        old.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await new.drain()
        await producer.stop()
    seen = [json.loads(r.value)["message_id"] for r in records]
    # Each record exactly once: the resumed leader handed nothing to the broker.
    assert sorted(seen) == sorted(str(e.message_id) for _, e in written + later)
    for key in keys:
        expected = [str(e.message_id) for k, e in written + later if k == key]
        assert [json.loads(r.value)["message_id"] for r in records if r.key == key.encode()] == (
            expected
        )


@pytest.mark.parametrize("noticed_by", ["the periodic check", "the acknowledgements"])
async def test_the_relay_publishes_again_what_a_broker_lost_after_acknowledging_it(
    pool: asyncpg.Pool[Any], settings: Settings, tmp_path: Path, noticed_by: str
) -> None:
    # A broker of this test's own: it is killed and replaced by an empty one on its port.
    broker = EmbeddedBroker(tmp_path / "kafka", free_port())
    broker.start()
    own = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap})
    commands = topic(own, Topic.CAMPAIGN_COMMANDS)
    producer: AIOKafkaProducer | None = None
    relay: OutboxRelay | None = None
    task: asyncio.Task[None] | None = None
    try:
        await ensure_topics(broker.bootstrap, own.topic_prefix)
        producer = relay_producer(own)
        await producer.start()
        # Only the acknowledgements can notice when the periodic check does not come round.
        check_s = 0.3 if noticed_by == "the periodic check" else 3600
        relay = OutboxRelay(pool, producer, bootstrap_servers=broker.bootstrap,
                            topic_prefix=own.topic_prefix, poll_interval_s=0.1,
                            loss_check_s=check_s)  # fmt: skip
        task = asyncio.create_task(relay.run())
        keys = [str(uuid4()) for _ in range(3)]
        before = [(keys[i % 3], launch_command(keys[i % 3])) for i in range(30)]
        await write(pool, before)
        await eventually(lambda: _zero(unsent(pool)))
        assert len(await read_topic(broker.bootstrap, commands, expected=30)) == 30
        republished = REPUBLISHED._value.get()

        broker.stop()  # memory storage: everything it acknowledged is gone
        broker.start()
        after = [(keys[0], launch_command(keys[0]))]
        if noticed_by == "the acknowledgements":
            # As `dripline infra up` does; then a new record is acknowledged at offset 0.
            await ensure_topics(broker.bootstrap, own.topic_prefix)
            await write(pool, after)
        else:
            after = []
        await eventually(lambda: _async(REPUBLISHED._value.get() >= republished + 30))
        await eventually(lambda: _zero(unsent(pool)))
        records = await read_topic(broker.bootstrap, commands, expected=len(before + after))
    finally:
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if relay is not None:
            await relay.drain()
        if producer is not None:
            await producer.stop()
        broker.stop()
    seen = [json.loads(r.value)["message_id"] for r in records]
    assert sorted(seen) == sorted(str(e.message_id) for _, e in before + after)
    if not after:
        # Found before anything new was published: republished in the order written.
        for key in keys:
            expected = [str(e.message_id) for k, e in before if k == key]
            assert [
                json.loads(r.value)["message_id"] for r in records if r.key == key.encode()
            ] == (expected)
    # What is recorded now is where the new broker has the records.
    recorded = await pool.fetch("SELECT kafka_partition, kafka_offset, message_id FROM outbox")
    where = {(r.partition, r.offset): json.loads(r.value)["message_id"] for r in records}
    assert {
        (r["kafka_partition"], r["kafka_offset"]): str(r["message_id"]) for r in recorded
    } == where


async def test_the_broker_check_finds_nothing_lost_on_a_broker_that_kept_everything(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    # Batches of several records per partition: Tansu reports a partition's end as its last
    # batch's first offset + 1, which must not read as a loss.
    keys = [str(uuid4()) for _ in range(3)]
    await write(pool, [(keys[i % 3], launch_command(keys[i % 3])) for i in range(60)])
    producer = relay_producer(settings)
    await producer.start()
    relay = OutboxRelay(pool, producer, bootstrap_servers=settings.bootstrap_servers,
                        topic_prefix=settings.topic_prefix, poll_interval_s=0.1,
                        loss_check_s=3600)  # fmt: skip
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: _zero(unsent(pool)))
        assert relay.is_leader
        assert await relay.check_broker() == 0
        assert await unsent(pool) == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await relay.drain()
        await producer.stop()
