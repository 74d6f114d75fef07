"""Every contract example a service handles, fed through that service's handler against a real
database: the handler applies it and emits what the contract promises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.scheduler.app import create_service as scheduler
from services.stats.app import create_service as stats
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.contracts import CONTRACTS, Contract
from shared.runtime import Service
from shared.settings import Settings
from tests.shared.messaging.test_consumer import FakeRecord

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CREATOR = UUID("00000000-0000-0000-0000-00000000000c")


def handled() -> list[tuple[Contract, str]]:
    settings = Settings(kafka_bootstrap="unused:9092", database_url="postgresql://unused/x")
    pairs = []
    for service in (scheduler(settings), stats(settings)):
        for contract in CONTRACTS:
            if contract.type.value in service.handlers.get(contract.topic, {}):
                pairs.append((contract, service.name))
    return pairs


async def seed_example_campaign(pool: asyncpg.Pool[Any], campaign_id: str) -> None:
    await pool.execute("INSERT INTO users (id, email) VALUES ($1, 'c@example.com')", CREATOR)
    await pool.execute(
        "INSERT INTO campaigns (id, created_by, name) VALUES ($1, $2, 'Example')",
        UUID(campaign_id), CREATOR,
    )  # fmt: skip


def example_record(contract: Contract) -> FakeRecord:
    body = {
        "message_id": "00000000-0000-0000-0000-0000000000aa",
        "type": contract.type.value,
        "version": contract.version,
        "occurred_at": NOW.isoformat(),
        "actor": {"user_id": str(CREATOR), "organization_id": None},
        "correlation_id": "00000000-0000-0000-0000-0000000000bb",
        "payload": contract.example,
    }
    return FakeRecord(json.dumps(body).encode(), 0, topic=contract.topic.value)


# What each handled example must leave behind.
EFFECTS = {
    ("scheduler", "campaign.launch"): (
        "SELECT count(*) FROM campaigns WHERE status = 'active'", 1),
    ("scheduler", "campaign.launch/outbox"): (
        "SELECT count(*) FROM outbox WHERE topic = 'dripline.campaign.events'", 1),
    ("stats", "campaign.status_changed"): (
        "SELECT launches FROM campaign_stats", 1),
    ("stats", "campaign.command_rejected"): (
        "SELECT count(*) FROM campaign_activities WHERE type = 'campaign.command_rejected'", 1),
}  # fmt: skip


def test_every_handled_contract_has_an_expected_effect() -> None:
    assert {(name, c.type.value) for c, name in handled()} <= set(EFFECTS)
    assert len(handled()) >= 3


@pytest.mark.parametrize(("contract", "service_name"), handled(),
                         ids=lambda v: v if isinstance(v, str) else v.type.value)  # fmt: skip
async def test_example_through_its_handler(
    pool: asyncpg.Pool[Any], contract: Contract, service_name: str
) -> None:
    await seed_example_campaign(pool, contract.example["campaign_id"])
    settings = Settings(kafka_bootstrap="unused:9092", database_url="postgresql://unused/x")
    service: Service = {"scheduler": scheduler, "stats": stats}[service_name](settings)
    consumer = BatchConsumer(
        name=service.name, topic=contract.topic, handlers=service.handlers[contract.topic],
        pool=pool, clock=FixedClock(NOW),
    )  # fmt: skip
    await consumer.process([example_record(contract)])
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic LIKE '%.dlq'") == 0
    for (name, key), (query, expected) in EFFECTS.items():
        if name == service_name and key.split("/")[0] == contract.type.value:
            assert await pool.fetchval(query) == expected, key
