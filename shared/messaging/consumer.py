"""Batch consumption with inbox deduplication and dead-lettering.

A batch of records is decoded against the contracts; the valid ones new to this consumer are
applied in one transaction, together with the inbox rows and every record they cause (outbox).
Records that break the contract are dead-lettered, through the outbox, in that same transaction.
If applying the batch raises, each record is retried in a transaction of its own, and one that
still raises is dead-lettered with the error, so one poison message cannot stall a partition.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

import asyncpg
from prometheus_client import Counter, Histogram

from shared.domain.clock import Clock
from shared.messaging import inbox
from shared.messaging.contracts import ContractViolation, Decoded, Payload, decode
from shared.messaging.outbox import OutboxRecord
from shared.messaging.topics import Topic
from shared.messaging.transaction import Transaction, transaction

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "dripline_messages_consumed_total",
    "Messages consumed, by outcome (applied, duplicate, dead_lettered)",
    ["consumer", "topic", "outcome"],
)
AFTER_COMMIT_FAILURES = Counter(
    "dripline_after_commit_failures_total",
    "Work after a batch's commit that raised",
    ["consumer", "topic"],
)
BATCH_SECONDS = Histogram(
    "dripline_consumer_batch_seconds", "Time to apply one consumed batch", ["consumer", "topic"]
)
EVENT_AGE = Histogram(
    "dripline_consumer_event_age_seconds",
    "Age of each applied message when its batch committed: now minus its occurred_at",
    ["consumer", "topic"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
OUTCOMES = ("applied", "duplicate", "dead_lettered")


# Failures of the database connection itself: the batch is redelivered, not dead-lettered.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


class Record(Protocol):
    """What the consumer needs of a Kafka record (aiokafka's ConsumerRecord fits)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]]: ...


AfterCommit = Callable[[], Awaitable[None]]


@dataclass
class HandlerContext(Transaction):
    """What a handler may touch: the batch's transaction (its connection, its outbox, the clock).

    Work that must not run inside the transaction (a network call) is registered with
    `after_commit`; it runs once the batch's transaction has committed. If it fails, the
    handler's committed state must be enough to recover (the sender's leases are).

    Work that belongs to the whole batch rather than to one message type (the stats service
    refreshes each touched campaign once per batch) is registered with `before_commit`: it runs
    inside the transaction after every handler, once per registration key."""

    consumer: str
    after_commit: list[AfterCommit] = field(default_factory=list)
    before_commit: dict[str, AfterCommit] = field(default_factory=dict)


P = TypeVar("P", bound=Payload)
# A handler says which payloads it takes (a topic's union, or one payload type); registering it
# for a contract (shared.runtime.Service.handle) checks that the contract's payload is one of
# them, and decoding that contract yields an instance of it, so the handler needs no isinstance.
Handler = Callable[[HandlerContext, Decoded[P]], Awaitable[None]]
BatchHandler = Callable[[HandlerContext, Sequence[Decoded[P]]], Awaitable[None]]
H = TypeVar("H")


def takes_batches(handler: H) -> H:
    """Mark a handler that also accepts a list: all of a batch's new messages of its type in one
    call (in batch order, after the handlers of other types have run), so it can apply them with
    set-based SQL. Called directly with one message, it must still handle that one."""
    setattr(handler, "takes_batches", True)  # noqa: B010 - read through bound methods too
    return handler


def as_batch(messages: Decoded[P] | Sequence[Decoded[P]]) -> Sequence[Decoded[P]]:
    """What a `takes_batches` handler was given, as a batch: a batch retried one by one calls
    it with a single message."""
    return [messages] if isinstance(messages, Decoded) else messages


def _takes_batches(handler: Handler[Any]) -> bool:
    return bool(getattr(handler, "takes_batches", False))


class UnhandledType(ContractViolation):
    pass


class BatchConsumer:
    def __init__(
        self,
        *,
        name: str,
        topic: Topic,
        handlers: dict[str, Handler[Any]],
        pool: asyncpg.Pool[Any],
        clock: Clock,
    ) -> None:
        self.name = name
        self.topic = topic
        self._handlers = handlers
        self._pool = pool
        self._clock = clock
        # Every series of this consumer exists from the start at zero, so the first increment
        # shows in rate() and the dashboards see a consumer that has had nothing to do.
        for outcome in OUTCOMES:
            CONSUMED.labels(name, topic.value, outcome)
        AFTER_COMMIT_FAILURES.labels(name, topic.value)
        BATCH_SECONDS.labels(name, topic.value)
        self._event_age = EVENT_AGE.labels(name, topic.value)

    async def process(self, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        try:
            await self._apply(records)
        except INFRASTRUCTURE_ERRORS:
            raise  # not the messages' fault: let the subscriber redeliver the batch
        except Exception:
            log.exception(
                "%s: applying a batch of %d from %s failed; retrying one by one",
                self.name, len(records), self.topic.value,
            )  # fmt: skip
            for record in records:
                await self._apply_alone(record)
        BATCH_SECONDS.labels(self.name, self.topic.value).observe(time.perf_counter() - started)

    def _decode(self, record: Record) -> Decoded[Payload]:
        decoded = decode(self.topic, record.value)
        if decoded.envelope.type not in self._handlers:
            raise UnhandledType(f"{self.name} does not handle {decoded.envelope.type}")
        return decoded

    async def _apply(self, records: Sequence[Record]) -> None:
        valid: list[Decoded[Payload]] = []
        rejected: list[tuple[Record, str]] = []
        for record in records:
            try:
                valid.append(self._decode(record))
            except ContractViolation as exc:
                rejected.append((record, exc.reason))
        async with transaction(self._pool, self._clock) as tx:
            new_ids = await inbox.claim(
                tx.connection,
                self.name,
                self.topic.value,
                [d.envelope.message_id for d in valid] + [_record_id(r) for r, _ in rejected],
            )
            context = HandlerContext(tx.connection, tx.outbox, tx.clock, self.name)
            applied = duplicates = 0
            occurred: list[datetime] = []
            batched: dict[str, list[Decoded[Payload]]] = {}
            for decoded in valid:
                if decoded.envelope.message_id not in new_ids:
                    duplicates += 1
                    continue
                new_ids.discard(decoded.envelope.message_id)  # a repeat within the batch
                handler = self._handlers[decoded.envelope.type]
                if _takes_batches(handler):
                    batched.setdefault(decoded.envelope.type, []).append(decoded)
                else:
                    await handler(context, decoded)
                applied += 1
                occurred.append(decoded.envelope.occurred_at)
            for type_, messages in batched.items():
                await cast(BatchHandler[Any], self._handlers[type_])(context, messages)
            for finish in context.before_commit.values():
                await finish()
            for record, reason in rejected:
                if _record_id(record) in new_ids:
                    tx.outbox.add_record(dead_letter(self.topic, record, reason, self.name))
        now = self._clock.now()
        for moment in occurred:
            self._event_age.observe(max(0.0, (now - moment).total_seconds()))
        for work in context.after_commit:
            try:
                await work()
            except INFRASTRUCTURE_ERRORS:
                raise
            except Exception:
                # The batch is committed; what this work did not finish is recovered from the
                # committed state (for the sender: the lease runs out and the send record is
                # reconciled). Logged and counted, not swallowed.
                AFTER_COMMIT_FAILURES.labels(self.name, self.topic.value).inc()
                log.exception("%s: work after commit failed", self.name)
        CONSUMED.labels(self.name, self.topic.value, "duplicate").inc(duplicates)
        CONSUMED.labels(self.name, self.topic.value, "applied").inc(applied)
        CONSUMED.labels(self.name, self.topic.value, "dead_lettered").inc(len(rejected))
        for record, reason in rejected:
            log.warning(
                "%s: dead-lettered %s[%d]@%d: %s",
                self.name, record.topic, record.partition, record.offset, reason,
            )  # fmt: skip

    async def _apply_alone(self, record: Record) -> None:
        try:
            await self._apply([record])
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            log.exception(
                "%s: %s[%d]@%d failed on its own; dead-lettering it",
                self.name, record.topic, record.partition, record.offset,
            )  # fmt: skip
            reason = f"handler failed: {type(exc).__name__}: {exc}"
            async with transaction(self._pool, self._clock) as tx:
                new = await inbox.claim(
                    tx.connection, self.name, self.topic.value, [_record_id(record)]
                )
                if new:
                    tx.outbox.add_record(dead_letter(self.topic, record, reason, self.name))
            CONSUMED.labels(self.name, self.topic.value, "dead_lettered").inc()


def _record_id(record: Record) -> uuid.UUID:
    """A stable id for a record that may have no valid envelope: its position in the log."""
    return uuid.uuid5(
        uuid.NAMESPACE_URL, f"kafka:{record.topic}/{record.partition}/{record.offset}"
    )


def dead_letter(source: Topic, record: Record, reason: str, consumer: str) -> OutboxRecord:
    """The rejected record, unchanged, with the reason and its origin in headers."""
    headers = {k: v.decode(errors="replace") for k, v in record.headers}
    headers.update(
        {
            "dlq-reason": reason,
            "dlq-source-topic": record.topic,
            "dlq-source-partition": str(record.partition),
            "dlq-source-offset": str(record.offset),
            "dlq-consumer": consumer,
        }
    )
    return OutboxRecord(
        topic=source.dlq,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        value=record.value or b"",
        headers=headers,
        message_id=str(_record_id(record)),
    )
