"""Batch consumption: inbox deduplication, dead-lettering, and poison messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer, HandlerContext
from shared.messaging.contracts import CampaignLaunch, Decoded
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from tests.builders import FakeRecord

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def launch_bytes() -> bytes:
    return new_envelope(
        type="campaign.launch",
        payload=CampaignLaunch(campaign_id=uuid4()),
        occurred_at=NOW,
        actor=Actor(user_id=uuid4()),
    ).to_bytes()


def consumer(
    pool: asyncpg.Pool[Any], seen: list[Decoded[CampaignLaunch]], fail: bool = False
) -> BatchConsumer:
    async def handler(context: HandlerContext, message: Decoded[CampaignLaunch]) -> None:
        if fail:
            raise RuntimeError("boom")
        await context.connection.execute("SELECT 1")
        seen.append(message)

    return BatchConsumer(
        name="test", topic=Topic.CAMPAIGN_COMMANDS, handlers={"campaign.launch": handler},
        pool=pool, clock=FixedClock(NOW),
    )  # fmt: skip


async def dead_letters(pool: asyncpg.Pool[Any]) -> list[asyncpg.Record]:
    return await pool.fetch("SELECT * FROM outbox WHERE topic LIKE '%.dlq' ORDER BY id")


async def test_a_message_is_applied_once_however_often_it_arrives(
    pool: asyncpg.Pool[Any],
) -> None:
    seen: list[Decoded[CampaignLaunch]] = []
    value = launch_bytes()
    batch = [FakeRecord(value, 0), FakeRecord(value, 1)]  # a repeat inside one batch
    await consumer(pool, seen).process(batch)
    await consumer(pool, seen).process([FakeRecord(value, 2)])  # and a redelivery later
    assert len(seen) == 1
    assert await dead_letters(pool) == []


async def test_contract_violations_are_dead_lettered_with_the_reason(
    pool: asyncpg.Pool[Any],
) -> None:
    seen: list[Decoded[CampaignLaunch]] = []
    good = launch_bytes()
    bad = FakeRecord(b"{not json", 7, headers=[("trace", b"abc")])
    await consumer(pool, seen).process([FakeRecord(good, 6), bad])
    await consumer(pool, seen).process([bad])  # redelivered: dead-lettered once only
    assert len(seen) == 1
    [letter] = await dead_letters(pool)
    assert letter["topic"] == "dripline.campaign.commands.dlq"
    assert letter["value"] == b"{not json"
    assert letter["key"] == b"k"
    headers = letter["headers"]
    assert headers["dlq-reason"].startswith("not JSON")
    assert headers["dlq-source-offset"] == "7"
    assert headers["trace"] == "abc"


async def test_a_type_this_consumer_does_not_handle_is_dead_lettered(
    pool: asyncpg.Pool[Any],
) -> None:
    quiet = BatchConsumer(name="quiet", topic=Topic.CAMPAIGN_COMMANDS, handlers={},
                          pool=pool, clock=FixedClock(NOW))  # fmt: skip
    await quiet.process([FakeRecord(launch_bytes(), 0)])
    [letter] = await dead_letters(pool)
    assert letter["headers"]["dlq-reason"] == "quiet does not handle campaign.launch"


async def test_a_poison_message_is_dead_lettered_and_does_not_block_the_batch(
    pool: asyncpg.Pool[Any],
) -> None:
    poison = launch_bytes()
    applied: list[bytes] = []

    async def handler(context: HandlerContext, message: Decoded[CampaignLaunch]) -> None:
        if str(message.envelope.message_id) == json.loads(poison)["message_id"]:
            raise RuntimeError("cannot apply this one")
        applied.append(message.envelope.to_bytes())

    picky = BatchConsumer(name="picky", topic=Topic.CAMPAIGN_COMMANDS,
                          handlers={"campaign.launch": handler}, pool=pool,
                          clock=FixedClock(NOW))  # fmt: skip
    good = launch_bytes()
    await picky.process([FakeRecord(poison, 0), FakeRecord(good, 1)])
    assert applied == [good]
    [letter] = await dead_letters(pool)
    assert letter["value"] == poison
    assert letter["headers"]["dlq-reason"] == "handler failed: RuntimeError: cannot apply this one"
    # The poison message's inbox row was rolled back with its failure; the good one stayed.
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'picky'") == 2


async def test_a_database_outage_is_raised_for_redelivery_not_dead_lettered(
    pool: asyncpg.Pool[Any],
) -> None:
    async def handler(context: HandlerContext, message: Decoded[CampaignLaunch]) -> None:
        raise ConnectionResetError("database went away")

    flaky = BatchConsumer(name="flaky", topic=Topic.CAMPAIGN_COMMANDS,
                          handlers={"campaign.launch": handler}, pool=pool,
                          clock=FixedClock(NOW))  # fmt: skip
    with pytest.raises(ConnectionResetError):
        await flaky.process([FakeRecord(launch_bytes(), 0)])
    assert await dead_letters(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM inbox") == 0
