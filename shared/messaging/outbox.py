"""Transactional outbox: records are written with the state change, then relayed to Kafka.

One relay per database holds an advisory lock and publishes unsent records in id order, so
records with the same key reach their partition in the order they were written. LISTEN/NOTIFY
wakes it at once; a poll covers a missed notification. Publishing is at-least-once (a crash
between publish and mark re-sends); consumers deduplicate through the inbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge, Histogram

from shared.db.pool import DbConnection, PoolConnectionProxy
from shared.db.sql import Queries
from shared.messaging.envelope import Envelope
from shared.messaging.topics import physical_name

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
NOTIFY_CHANNEL = "dripline_outbox"
_LIMIT = 1000  # fetch_unsent's literal limit: a literal keeps the plan custom
_CLEANUP_EVERY_S = 60.0
# Counting a large backlog walks the unsent index; while one lasts, count this often at most.
_COUNT_EVERY_S = 5.0

log = logging.getLogger(__name__)

PUBLISHED = Counter("dripline_outbox_published_total", "Outbox records published", ["topic"])
PUBLISH_FAILURES = Counter("dripline_outbox_publish_failures_total", "Failed relay passes")
UNSENT = Gauge(
    "dripline_outbox_unsent",
    "Outbox records not yet published, as the publishing relay last saw them (0 elsewhere)",
)
PUBLISH_LATENCY = Histogram(
    "dripline_outbox_publish_latency_seconds",
    "From an outbox record's creation (its transaction's start) until Kafka acknowledged it",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LEADER = Gauge("dripline_outbox_relay_leader", "1 while this process's relay is the publisher")


@dataclass(frozen=True)
class OutboxRecord:
    topic: str
    key: str | None
    value: bytes
    headers: dict[str, str]
    message_id: str


def record_for(topic: str, key: str | None, envelope: Envelope) -> OutboxRecord:
    return OutboxRecord(
        topic, key, envelope.to_bytes(), envelope.headers(), str(envelope.message_id)
    )


@dataclass
class Outbox:
    """Collects the records one transaction causes; `flush` writes them in that transaction."""

    records: list[OutboxRecord] = field(default_factory=list)

    def add(self, topic: str, key: str | None, envelope: Envelope) -> None:
        self.records.append(record_for(topic, key, envelope))

    def add_record(self, record: OutboxRecord) -> None:
        self.records.append(record)

    async def flush(self, connection: DbConnection) -> None:
        if not self.records:
            return
        await write(connection, self.records)
        self.records.clear()


async def write(connection: DbConnection, records: Sequence[OutboxRecord]) -> None:
    await connection.execute(
        QUERIES["insert_many"],
        [r.topic for r in records],
        [r.key.encode() if r.key is not None else None for r in records],
        [r.value for r in records],
        [r.headers for r in records],
        [r.message_id for r in records],
    )


class OutboxRelay:
    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        producer: AIOKafkaProducer,
        *,
        topic_prefix: str,
        poll_interval_s: float,
        outbox_retention_s: float = 3600.0,
        inbox_retention_s: float = 7 * 86400.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._prefix = topic_prefix
        self._poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._lead_connection: PoolConnectionProxy[Any] | None = None
        self._partitions: dict[str, list[int]] = {}
        self._outbox_retention = timedelta(seconds=outbox_retention_s)
        self._inbox_retention = timedelta(seconds=inbox_retention_s)
        self._next_cleanup = 0.0
        self._unsent = 0
        self._next_count = 0.0

    @property
    def is_leader(self) -> bool:
        return self._lead_connection is not None

    async def run(self) -> None:
        """Publish until stopped; a failed pass is logged, counted and retried after a pause."""
        while not self._stopping:
            try:
                if await self._ensure_leadership():
                    published = await self.publish_pending()
                    if time.monotonic() >= self._next_cleanup:
                        await self.forget_old()
                        self._next_cleanup = time.monotonic() + _CLEANUP_EVERY_S
                    if published >= _LIMIT:
                        continue
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                PUBLISH_FAILURES.inc()
                log.error("outbox relay pass failed, retrying: %r", exc)
                await self._release_leadership()
            except Exception:
                PUBLISH_FAILURES.inc()
                log.exception("outbox relay pass failed unexpectedly, retrying")
                await self._release_leadership()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._poll_interval_s)
            self._wake.clear()

    async def _ensure_leadership(self) -> bool:
        if self._lead_connection is not None and not self._lead_connection.is_closed():
            return True
        self._lead_connection = None
        connection = await self._pool.acquire()
        try:
            won = await connection.fetchval(QUERIES["try_lead"])
            if won:
                await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
                self._lead_connection = connection
                LEADER.set(1)
                log.info("outbox relay is now the publisher for this database")
                return True
        except BaseException:
            await self._pool.release(connection)
            raise
        await self._pool.release(connection)
        LEADER.set(0)
        return False

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _release_leadership(self) -> None:
        connection, self._lead_connection = self._lead_connection, None
        LEADER.set(0)
        # Only the publisher sees the backlog; a relay that stands by reports none, so a sum
        # or max over the instances is the publisher's figure, not a stale one.
        self._unsent = 0
        UNSENT.set(0)
        if connection is None:
            return
        # A broken connection is discarded by the pool, which also drops its advisory lock.
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await connection.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            await connection.execute("SELECT pg_advisory_unlock_all()")
        await self._pool.release(connection)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent records; returns how many were published.

        Records are grouped into one producer batch per partition (aiokafka's batch API is
        several times faster than a send per record), in id order within each partition, and
        the partition is the one the producer's own partitioner gives the key, so a key keeps
        its partition whichever way a record is sent."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(QUERIES["fetch_unsent"])
            fetched = time.perf_counter()
            if not rows:
                self._unsent = 0
                UNSENT.set(0)
                return 0
            deliveries = []
            open_batches: dict[tuple[str, int], Any] = {}
            for row in rows:
                topic = physical_name(row["topic"], self._prefix)
                partition = await self._partition_for(topic, row["key"])
                headers = [(k, v.encode()) for k, v in _headers(row["headers"]).items()]
                batch = open_batches.get((topic, partition))
                if batch is None:
                    batch = open_batches[(topic, partition)] = self._producer.create_batch()
                if (
                    batch.append(
                        key=row["key"], value=row["value"], timestamp=None, headers=headers
                    )
                    is None
                ):
                    # Full: send it, and start the partition's next batch with this record.
                    deliveries.append(
                        await self._producer.send_batch(batch, topic, partition=partition)
                    )
                    batch = open_batches[(topic, partition)] = self._producer.create_batch()
                    batch.append(
                        key=row["key"], value=row["value"], timestamp=None, headers=headers
                    )
            for (topic, partition), batch in open_batches.items():
                deliveries.append(
                    await self._producer.send_batch(batch, topic, partition=partition)
                )
            await asyncio.gather(*deliveries)
            acknowledged = time.perf_counter() - fetched
            await connection.execute(QUERIES["mark_sent"], [row["id"] for row in rows])
            await self._count_unsent(connection, len(rows))
        for row in rows:
            PUBLISHED.labels(row["topic"]).inc()
            # The age comes from the database's clock, the rest from ours: no clock skew.
            PUBLISH_LATENCY.observe(row["age_s"] + acknowledged)
        return len(rows)

    async def _count_unsent(self, connection: DbConnection, published: int) -> None:
        """A short fetch emptied the backlog; a full one leaves some, counted now and then
        (between counts, the last count less what has been published since)."""
        if published < _LIMIT:
            self._unsent = 0
        elif time.monotonic() >= self._next_count:
            self._unsent = int(await connection.fetchval(QUERIES["count_unsent"]))
            self._next_count = time.monotonic() + _COUNT_EVERY_S
        else:
            self._unsent = max(0, self._unsent - published)
        UNSENT.set(self._unsent)

    async def forget_old(self, now: datetime | None = None) -> int:
        """Retention (the leader's chore): published records older than the outbox retention
        and consumed message ids older than the inbox retention are deleted, a slice at a
        time. Returns the rows deleted."""
        now = now or datetime.now(UTC)
        deleted = 0
        async with self._pool.acquire() as connection:
            for query, cutoff in (("forget_sent", now - self._outbox_retention),
                                  ("forget_seen", now - self._inbox_retention)):  # fmt: skip
                while True:
                    status = await connection.execute(QUERIES[query], cutoff)
                    removed = int(status.rsplit(" ", 1)[1])
                    deleted += removed
                    if removed < 10_000:
                        break
        return deleted

    async def _partition_for(self, topic: str, key: bytes | None) -> int:
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(
                await self._producer.partitions_for(topic)
            )
        chosen: int = self._producer._partitioner(key, partitions, partitions)
        return chosen

    async def drain(self, timeout_s: float = 5.0) -> None:
        """On shutdown: publish what is left if this relay leads, then step down."""
        self._stopping = True
        self._wake.set()
        try:
            if self.is_leader:
                async with asyncio.timeout(timeout_s):
                    while await self.publish_pending():
                        pass
        finally:
            await self._release_leadership()


def _headers(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value)
    assert isinstance(value, dict)
    return {str(k): str(v) for k, v in value.items()}
