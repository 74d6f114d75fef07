"""Commands whose message was lost: applied from their outbox record.

The relay marks a record sent once the broker acknowledged it, and a broker can still lose it
(Tansu keeps messages in memory; a Kafka leader can die with unreplicated records). A lifecycle
command the API answered with 202 would then never be applied or answered, and a bulk operation
the API accepted would never be recorded (the scheduler records it from its command). This
sweep finds
command records the relay sent more than `command_recovery_after_s` ago whose message id is not
in the scheduler's inbox, and hands them to the scheduler's own consumer, exactly as if they
had been consumed: same handlers, same transaction with the inbox claim, same dead-lettering.
The inbox claim makes it safe both ways: a message that arrives after the sweep applied its
record is a duplicate, and a record the consumer applied meanwhile is skipped by the sweep.

It walks dripline.campaign.commands and dripline.bulk.commands, each with its own mark.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from prometheus_client import Counter

from shared.db.pool import fetch_replanned
from shared.db.sql import Queries
from shared.messaging.consumer import BatchConsumer
from shared.messaging.topics import Topic, physical_name
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
log = logging.getLogger(__name__)

RECOVERED = Counter(
    "dripline_scheduler_commands_recovered_total",
    "Campaign and bulk commands applied from their outbox record because their message never"
    " arrived",
)
# The command topics the scheduler consumes whose records it recovers (the query's topic list).
RECOVERED_TOPICS = (Topic.CAMPAIGN_COMMANDS, Topic.BULK_COMMANDS)
_PAGE = 500  # command records read per query


@dataclass(frozen=True)
class OutboxCommand:
    """An outbox record in the shape of a consumed Kafka record (shared.messaging.consumer's
    Record): partition -1 and the outbox id as offset say where it really came from, should
    it have to be dead-lettered."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


class LostCommands:
    """The periodic job. It remembers how far every command record has been settled (consumed,
    or applied here), per topic, so each sweep reads only the records after that: the first
    sweep of a process reads the outbox's retention window once."""

    def __init__(self) -> None:
        self._settled_through = dict.fromkeys(RECOVERED_TOPICS, 0)

    async def __call__(self, service: Service) -> int:
        recovered = 0
        for topic in RECOVERED_TOPICS:
            recovered += await self._recover(service, topic)
        return recovered

    async def _recover(self, service: Service, topic: Topic) -> int:
        consumer = BatchConsumer(
            name=service.name,
            topic=topic,
            handlers=service.handlers[topic],
            pool=service.pool,
            clock=service.clock,
        )
        physical = physical_name(topic.value, service.settings.topic_prefix)
        recovered = 0
        while True:
            async with service.pool.acquire() as connection:
                rows = await fetch_replanned(
                    connection,
                    QUERIES["lost_commands"],
                    service.name,
                    self._settled_through[topic],
                    _PAGE,
                    service.settings.command_recovery_after_s,
                    topic.value,
                )
            lost, settled, blocked = _settle(rows, self._settled_through[topic])
            if lost:
                for row in lost:
                    log.warning(
                        "%s record %d was sent but never consumed; applying it",
                        topic.value,
                        row["id"],
                    )
                await consumer.process([_as_record(row, physical) for row in lost])
                RECOVERED.inc(len(lost))
                recovered += len(lost)
            self._settled_through[topic] = settled
            if blocked or len(rows) < _PAGE:
                return recovered


def _settle(rows: Sequence[asyncpg.Record], settled: int) -> tuple[list[asyncpg.Record], int, bool]:
    """Walk the records in id order up to the first one still unsent or sent too recently (its
    message may be on its way): the lost ones before it, the id settled through, and whether
    the walk stopped early. Nothing after an unsettled record is settled, so none is skipped."""
    lost: list[asyncpg.Record] = []
    for row in rows:
        if not row["consumed"]:
            if not row["due"]:
                return lost, settled, True
            lost.append(row)
        settled = row["id"]
    return lost, settled, False


def _as_record(row: asyncpg.Record, physical_topic: str) -> OutboxCommand:
    headers: dict[str, Any] = row["headers"]  # the pool decodes jsonb
    return OutboxCommand(
        topic=physical_topic,
        partition=-1,
        offset=row["id"],
        key=row["key"],
        value=row["value"],
        headers=[(str(k), str(v).encode()) for k, v in headers.items()],
    )
