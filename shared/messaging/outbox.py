"""Transactional outbox: records are written with the state change, then relayed to Kafka.

One relay per database publishes unsent records in id order, so records with the same key
reach their partition in the order they were written. It leads by a lease in `outbox_relay`
that it renews; a relay that stops renewing (paused, cut off) is replaced after the lease, and
the epoch in that row fences it out: it marks nothing sent, and it hands nothing more to the
producer once its own clock says the lease ran out. LISTEN/NOTIFY wakes it at once; a poll
covers a missed notification. Publishing is at-least-once (a crash between publish and mark
re-sends, and so does a broker that loses what it acknowledged); consumers deduplicate through
the inbox.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from prometheus_client import Counter, Gauge, Histogram

from shared.db.pool import (
    DbConnection,
    PoolConnectionProxy,
    execute_replanned,
    fetch_replanned,
    fetchrow_replanned,
)
from shared.db.sql import Queries
from shared.domain.clock import Clock
from shared.messaging.contracts import CONTRACTS, Contract, Payload
from shared.messaging.envelope import Cause, Envelope, new_envelope
from shared.messaging.topic_admin import ensure_topics
from shared.messaging.topics import physical_name

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
NOTIFY_CHANNEL = "dripline_outbox"
_LIMIT = 1000  # fetch_unsent's literal limit
_CLEANUP_EVERY_S = 60.0
_CHOSEN_KEPT = 100_000  # keys whose partition the relay remembers
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
REPUBLISHED = Counter(
    "dripline_outbox_republished_total",
    "Outbox records made unsent again because the broker lost them after acknowledging them",
)
BROKER_LOSSES = Counter(
    "dripline_outbox_broker_losses_total",
    "Times the relay found that the broker had lost records it acknowledged",
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


class UnroutableMessage(Exception):
    """A payload the contract registry does not name once: unregistered, or registered under
    several types and emitted without saying which."""


def _routes() -> dict[type[Payload], list[Contract[Any]]]:
    routes: dict[type[Payload], list[Contract[Any]]] = {}
    for contract in CONTRACTS:
        routes.setdefault(contract.payload, []).append(contract)
    return routes


_ROUTES = _routes()


def route(payload: type[Payload], type_: str | None = None) -> Contract[Any]:
    """The one contract `payload` (with `type_`, when given) is emitted under."""
    registered = _ROUTES.get(payload, [])
    matching = [c for c in registered if type_ is None or c.type == type_]
    if not matching:
        as_type = f" as {str(type_)!r}" if type_ is not None else ""
        known = ", ".join(sorted(c.type for c in registered)) or "nothing"
        raise UnroutableMessage(
            f"{payload.__name__} is not registered{as_type} in the contracts (registered as: "
            f"{known})"
        )
    if len(matching) > 1:
        pairs = ", ".join(sorted(f"{c.topic.value}/{c.type}@v{c.version}" for c in matching))
        raise UnroutableMessage(
            f"{payload.__name__} is registered as {pairs}: pass type= to say which"
        )
    return matching[0]


@dataclass
class Outbox:
    """Collects the records one transaction causes; `flush` writes them in that transaction
    (`shared.messaging.transaction` does, on a successful exit)."""

    records: list[OutboxRecord] = field(default_factory=list)
    clock: Clock | None = None

    def emit(
        self,
        payload: Payload,
        *,
        key: UUID | str | None,
        cause: Cause | Envelope | None = None,
        type: str | None = None,
        at: datetime | None = None,
    ) -> Envelope:
        """Add one message: its topic, type and version come from the contract registry (`type`
        picks one where a payload serves several), its actor and correlation from `cause`, and
        its time from `at` or the outbox's clock. Returns the envelope written."""
        contract = route(payload.__class__, type)
        if isinstance(cause, Envelope):
            cause = Cause.of(cause)
        cause = cause or Cause()
        if at is None:
            if self.clock is None:
                raise ValueError("an outbox without a clock needs the event's time (at=)")
            at = self.clock.now()
        envelope = new_envelope(
            type=contract.type,
            payload=payload,
            occurred_at=at,
            actor=cause.actor,
            correlation_id=cause.correlation_id,
            causation_id=cause.causation_id,
            version=contract.version,
        )
        self.add(contract.topic, str(key) if key is not None else None, envelope)
        return envelope

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


class LeadershipLost(Exception):
    """Another relay holds the lease now, or this one's lease ran out before it was renewed."""


@dataclass(frozen=True)
class _Sent:
    """One producer batch handed to the client: where it goes and the outbox ids it holds."""

    topic: str  # logical
    partition: int
    ids: list[int]


class OutboxRelay:
    """Publishes the outbox while it holds the database's relay lease (see the module doc and
    docs/architecture.md, "Outbox relay")."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        producer: AIOKafkaProducer,
        *,
        bootstrap_servers: str,
        topic_prefix: str,
        poll_interval_s: float,
        lease_s: float = 10.0,
        loss_check_s: float = 5.0,
        create_topics: bool = True,
        holder: str = "relay",
        outbox_retention_s: float = 3600.0,
        inbox_retention_s: float = 7 * 86400.0,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._bootstrap = bootstrap_servers
        self._prefix = topic_prefix
        self._poll_interval_s = poll_interval_s
        self._lease_s = lease_s
        self._loss_check_s = loss_check_s
        self._create_topics = create_topics
        self._holder = f"{holder} pid {os.getpid()} on {socket.gethostname()}"
        self._wake = asyncio.Event()
        self._stopping = False
        self._lead_connection: PoolConnectionProxy[Any] | None = None
        self._epoch: int | None = None
        # Monotonic times: the lease as this process must assume it (it began no later than
        # the renewal was sent, so it ends here before it ends in the database), and when to
        # renew it (a third of the way in, so two renewals can fail before it runs out).
        self._lease_ends = 0.0
        self._renew_at = 0.0
        self._cluster_id: str | None = None
        # (logical topic, partition) -> the first offset of the last batch the broker
        # acknowledged there (migration 0010 says why the batch's first offset)
        self._acked: dict[tuple[str, int], int] = {}
        self._next_loss_check = 0.0
        self._watcher: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._partitions: dict[str, list[int]] = {}
        # (topic, key) -> the partition the producer's partitioner gives it. The partitioner is
        # murmur2 in pure Python, a tenth of the relay's CPU when run per record (bench.dispatch
        # under py-spy), and a campaign's or an account's records share their key.
        self._chosen: dict[tuple[str, bytes], int] = {}
        self._outbox_retention = timedelta(seconds=outbox_retention_s)
        self._inbox_retention = timedelta(seconds=inbox_retention_s)
        self._next_cleanup = 0.0
        self._unsent = 0
        self._next_count = 0.0

    @property
    def is_leader(self) -> bool:
        return self._epoch is not None

    async def run(self) -> None:
        """Publish until stopped; a failed pass is logged, counted and retried after a pause."""
        while not self._stopping:
            try:
                if await self._ensure_leadership():
                    if time.monotonic() >= self._next_loss_check:
                        await self.check_broker()
                    published = await self.publish_pending()
                    if time.monotonic() >= self._next_cleanup:
                        await self.forget_old()
                        self._next_cleanup = time.monotonic() + _CLEANUP_EVERY_S
                    if published >= _LIMIT:
                        continue
            except LeadershipLost as exc:
                log.warning("outbox relay steps down: %s", exc)
                await self._release_leadership()
            except (TimeoutError, OSError, asyncpg.PostgresError, KafkaError) as exc:
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
        """Renew the lease when it is due, or try to take it; True while this relay leads."""
        if self._epoch is not None:
            assert self._lead_connection is not None
            if self._lead_connection.is_closed():
                raise LeadershipLost("its database connection was closed (terminated?)")
            if time.monotonic() >= self._renew_at:
                sent = time.monotonic()
                if (
                    await self._lead_connection.fetchval(
                        QUERIES["renew_lead"], self._epoch, self._lease_s
                    )
                    is None
                ):
                    raise LeadershipLost(f"another relay took the lease (epoch {self._epoch})")
                self._lease_from(sent)
            return True
        connection = await self._pool.acquire()
        try:
            sent = time.monotonic()
            row = await connection.fetchrow(QUERIES["claim_lead"], self._holder, self._lease_s)
        except BaseException:
            await self._pool.release(connection)
            raise
        if row is None:
            await self._pool.release(connection)
            LEADER.set(0)
            return False
        self._lead_connection = connection
        self._epoch = int(row["epoch"])
        self._lease_from(sent)
        self._cluster_id = row["cluster_id"]
        try:
            if row["backend_pid"] is not None:
                await self._fence_out(connection, row["backend_pid"], row["backend_started"])
            self._acked = {
                (r["topic"], r["kafka_partition"]): r["last_batch"]
                for r in await connection.fetch(QUERIES["last_batches"])
            }
            await connection.add_listener(NOTIFY_CHANNEL, self._on_notify)
        except BaseException:
            await self._release_leadership()
            raise
        # A broker may have lost records while no relay was watching: look before publishing.
        self._next_loss_check = 0.0
        LEADER.set(1)
        log.info("outbox relay is now the publisher for this database (epoch %s)", self._epoch)
        return True

    def _lease_from(self, sent: float) -> None:
        self._lease_ends = sent + self._lease_s
        self._renew_at = sent + self._lease_s / 3

    def _check_lease(self) -> None:
        """Before records are handed to the producer: a relay that was paused past its lease
        may have been replaced, and publishing now could put records behind the new leader's."""
        if time.monotonic() >= self._lease_ends:
            raise LeadershipLost("its lease ran out before it was renewed (paused?)")

    async def _fence_out(
        self, connection: DbConnection, pid: int, started: datetime | None
    ) -> None:
        """Terminate the previous leader's connection. The epoch already fences it; this only
        makes a paused leader find out at once when it resumes. Without the privilege (another
        role), the epoch alone does it."""
        try:
            await connection.execute(QUERIES["terminate_backend"], pid, started)
        except asyncpg.InsufficientPrivilegeError as exc:
            log.warning("outbox relay could not terminate the previous leader's backend: %s", exc)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()

    async def _release_leadership(self) -> None:
        connection, self._lead_connection = self._lead_connection, None
        epoch, self._epoch = self._epoch, None
        self._lease_ends = self._renew_at = 0.0
        LEADER.set(0)
        # Only the publisher sees the backlog; a relay that stands by reports none, so a sum
        # or max over the instances is the publisher's figure, not a stale one.
        self._unsent = 0
        UNSENT.set(0)
        if connection is None:
            return
        # A broken connection is discarded by the pool; a lease left behind runs out.
        with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            await connection.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            if epoch is not None:
                await connection.execute(QUERIES["release_lead"], epoch)
        await self._pool.release(connection)

    async def publish_pending(self) -> int:
        """Publish one batch of unsent records; returns how many were published.

        Records are grouped into one producer batch per partition (aiokafka's batch API is
        several times faster than a send per record), in id order within each partition, and
        the partition is the one the producer's own partitioner gives the key, so a key keeps
        its partition whichever way a record is sent. Raises LeadershipLost when this relay
        does not (or no longer) hold the lease."""
        if self._epoch is None:
            raise LeadershipLost("it does not hold the lease")
        async with self._pool.acquire() as connection:
            rows = await fetch_replanned(connection, QUERIES["fetch_unsent"])
            fetched = time.perf_counter()
            if not rows:
                self._unsent = 0
                UNSENT.set(0)
                return 0
            deliveries = []
            sent: list[_Sent] = []
            open_batches: dict[tuple[str, int], tuple[Any, _Sent]] = {}
            for row in rows:
                topic = physical_name(row["topic"], self._prefix)
                partition = await self._partition_for(topic, row["key"])
                headers = [(k, v.encode()) for k, v in _headers(row["headers"]).items()]
                opened = open_batches.get((topic, partition))
                if opened is None:
                    opened = open_batches[(topic, partition)] = (
                        self._producer.create_batch(), _Sent(row["topic"], partition, []),
                    )  # fmt: skip
                batch, ids = opened
                if (
                    batch.append(
                        key=row["key"], value=row["value"], timestamp=None, headers=headers
                    )
                    is None
                ):
                    # Full: send it, and start the partition's next batch with this record.
                    self._check_lease()
                    deliveries.append(
                        await self._producer.send_batch(batch, topic, partition=partition)
                    )
                    sent.append(ids)
                    batch, ids = open_batches[(topic, partition)] = (
                        self._producer.create_batch(), _Sent(row["topic"], partition, []),
                    )  # fmt: skip
                    batch.append(
                        key=row["key"], value=row["value"], timestamp=None, headers=headers
                    )
                ids.ids.append(row["id"])
            for (topic, partition), (batch, ids) in open_batches.items():
                self._check_lease()
                deliveries.append(
                    await self._producer.send_batch(batch, topic, partition=partition)
                )
                sent.append(ids)
            acks: list[RecordMetadata] = await asyncio.gather(*deliveries)
            acknowledged = time.perf_counter() - fetched
            await self._mark_sent(connection, sent, acks)
            await self._count_unsent(connection, len(rows))
        for topic_name, count in collections.Counter(row["topic"] for row in rows).items():
            PUBLISHED.labels(topic_name).inc(count)
        for row in rows:
            # The age comes from the database's clock, the rest from ours: no clock skew.
            PUBLISH_LATENCY.observe(row["age_s"] + acknowledged)
        return len(rows)

    async def _mark_sent(
        self, connection: DbConnection, sent: list[_Sent], acks: list[RecordMetadata]
    ) -> None:
        """Mark the records sent with where the broker put them (a batch's acknowledgement
        gives its first record's offset; the others follow it). A batch acknowledged at or
        below the first offset of the partition's last batch before means the broker lost
        records: those are made unsent in the same transaction, before the new ones are
        marked."""
        ids: list[int] = []
        partitions: list[int] = []
        offsets: list[int] = []
        lasts: dict[tuple[str, int], int] = {}
        went_back: dict[tuple[str, int], int] = {}
        for batch, ack in zip(sent, acks, strict=True):
            tp = (batch.topic, batch.partition)
            if tp not in lasts and ack.offset <= self._acked.get(tp, -1):
                went_back[tp] = ack.offset
            ids.extend(batch.ids)
            partitions.extend([batch.partition] * len(batch.ids))
            offsets.extend(range(ack.offset, ack.offset + len(batch.ids)))
            lasts[tp] = max(lasts.get(tp, -1), ack.offset)
        async with connection.transaction():
            if went_back:
                await self._republish(connection, went_back, "its offsets went back")
                # A broker that lost these partitions has likely lost others, which only the
                # check can find (nothing may be published to them for a while).
                self._next_loss_check = 0.0
            marked = await connection.fetchval(
                QUERIES["mark_sent"], ids, partitions, offsets, self._epoch,
                [tp[0] for tp in lasts], [tp[1] for tp in lasts], list(lasts.values()),
            )  # fmt: skip
        if not marked:
            raise LeadershipLost(
                f"another relay took the lease while it published (epoch {self._epoch})"
            )
        self._acked.update(lasts)

    async def check_broker(self) -> int:
        """Compare the broker with what it acknowledged: a new cluster id, or a partition that
        ends at or below the first offset of its last acknowledged batch, lost records; those
        still kept in the outbox are made unsent, so the normal path publishes them again in
        id order. Returns how many."""
        self._next_loss_check = time.monotonic() + self._loss_check_s
        if self._epoch is None:
            raise LeadershipLost("it does not hold the lease")
        admin, watcher = await self._broker_clients()
        cluster_id = str((await admin.describe_cluster())["cluster_id"])
        async with self._pool.acquire() as connection:
            if self._cluster_id is None:
                await connection.execute(QUERIES["note_cluster"], cluster_id, self._epoch)
                self._cluster_id = cluster_id
            elif cluster_id != self._cluster_id:
                republished = await connection.fetchval(
                    QUERIES["republish_all"], cluster_id, self._epoch
                )
                if republished is None:
                    raise LeadershipLost("another relay took the lease")
                self._found_loss(
                    republished, f"the broker is another cluster ({self._cluster_id} before, "
                    f"{cluster_id} now)",
                )  # fmt: skip
                self._cluster_id = cluster_id
                self._acked.clear()
                return int(republished)
            if not self._acked:
                return 0
            existing = set(await admin.list_topics())
            by_physical = {
                TopicPartition(physical_name(topic, self._prefix), partition): (topic, partition)
                for topic, partition in self._acked
            }
            present = [tp for tp in by_physical if tp.topic in existing]
            # A topic the broker no longer has lost all its records (and end_offsets would
            # wait for it forever).
            ends = {by_physical[tp]: 0 for tp in by_physical if tp.topic not in existing}
            if present:
                for tp, end in (await watcher.end_offsets(present)).items():
                    ends[by_physical[tp]] = end
            lost = {tp: end for tp, end in ends.items() if end <= self._acked[tp]}
            if not lost:
                return 0
            return await self._republish(
                connection, lost, "partitions end before batches it acknowledged"
            )

    async def _republish(
        self, connection: DbConnection, lost: dict[tuple[str, int], int], why: str
    ) -> int:
        if self._create_topics:
            # The broker may have lost its topics too; they are needed at their partition
            # counts before anything is published again (a produce could create them with
            # the broker's default).
            await ensure_topics(self._bootstrap, self._prefix)
        self._partitions.clear()
        self._chosen.clear()
        republished = await connection.fetchval(
            QUERIES["republish_from"], [tp[0] for tp in lost], [tp[1] for tp in lost],
            list(lost.values()), self._epoch,
        )  # fmt: skip
        if republished is None:
            raise LeadershipLost("another relay took the lease")
        for tp, end in lost.items():
            self._acked[tp] = end - 1
        self._found_loss(
            republished, f"{why}: " + ", ".join(f"{t}[{p}] from {o}" for (t, p), o in lost.items())
        )
        return int(republished)

    def _found_loss(self, republished: int, why: str) -> None:
        REPUBLISHED.inc(republished)
        BROKER_LOSSES.inc()
        log.warning(
            "the broker lost records it had acknowledged (%s); publishing %d outbox records again",
            why, republished,
        )  # fmt: skip

    async def _broker_clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        """An admin client (cluster id, topics) and a consumer outside any group (end offsets),
        started on first use and kept: the check runs every few seconds."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap)
            await admin.start()
            self._admin = admin
        if self._watcher is None:
            watcher = AIOKafkaConsumer(
                bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False
            )
            await watcher.start()
            self._watcher = watcher
        return self._admin, self._watcher

    async def _count_unsent(self, connection: DbConnection, published: int) -> None:
        """A short fetch emptied the backlog; a full one leaves some, counted now and then
        (between counts, the last count less what has been published since)."""
        if published < _LIMIT:
            self._unsent = 0
        elif time.monotonic() >= self._next_count:
            counted = await fetchrow_replanned(connection, QUERIES["count_unsent"])
            self._unsent = int(counted[0])
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
                    status = await execute_replanned(connection, QUERIES[query], cutoff)
                    removed = int(status.rsplit(" ", 1)[1])
                    deleted += removed
                    if removed < 10_000:
                        break
        return deleted

    async def _partition_for(self, topic: str, key: bytes | None) -> int:
        if key is not None and (known := self._chosen.get((topic, key))) is not None:
            return known
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = self._partitions[topic] = sorted(
                await self._producer.partitions_for(topic)
            )
        chosen: int = self._producer._partitioner(key, partitions, partitions)
        if key is not None:  # no key: a random partition each time, nothing to remember
            if len(self._chosen) >= _CHOSEN_KEPT:
                self._chosen.clear()
            self._chosen[topic, key] = chosen
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
        except LeadershipLost as exc:
            log.warning("outbox relay leaves the rest to the new leader: %s", exc)
        finally:
            await self._release_leadership()
            if self._watcher is not None:
                await self._watcher.stop()
            if self._admin is not None:
                await self._admin.close()
            self._watcher = self._admin = None


def _headers(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        value = json.loads(value)
    assert isinstance(value, dict)
    return {str(k): str(v) for k, v in value.items()}
