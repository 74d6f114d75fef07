"""contact.upsert carries a contact's time zone (issue 16, item 3), through the API's real
handler and consumer against a real database: given, it is stored and answered on
contact.changed; absent, the stored one is kept; an unknown zone breaks the contract and is
dead-lettered with the reason, changing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from services.api.app import create_service
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.contracts import ContactUpsert, MessageType
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.builders import FakeRecord

NOW = datetime.now(UTC).replace(microsecond=0)


def consumer(pool: asyncpg.Pool[Any]) -> BatchConsumer:
    service = create_service(Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y"))
    return BatchConsumer(
        name="api",
        topic=Topic.CONTACT_COMMANDS,
        handlers=service.handlers[Topic.CONTACT_COMMANDS],
        pool=pool,
        clock=FixedClock(NOW),
    )


def upsert(user: UUID, offset: int, payload: dict[str, Any]) -> FakeRecord:
    """An upsert as another system sends it: the payload as JSON, not checked on the way out."""
    envelope = new_envelope(
        type=MessageType.CONTACT_UPSERT,
        occurred_at=NOW,
        actor=Actor(user_id=user),
        correlation_id=uuid4(),
        payload=ContactUpsert(external_id="crm-1"),
    )
    raw = json.loads(envelope.to_bytes())
    raw["payload"] = payload
    return FakeRecord(json.dumps(raw).encode(), offset, topic=Topic.CONTACT_COMMANDS.value)


async def changed(pool: asyncpg.Pool[Any]) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE headers->>'message-type' = 'contact.changed' ORDER BY id"
    )
    return [json.loads(bytes(row["value"]))["payload"] for row in rows]


async def test_an_upsert_sets_keeps_and_refuses_a_contacts_zone(pool: asyncpg.Pool[Any]) -> None:
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('k@example.com') RETURNING id")
    base = {"external_id": "crm-1", "telegram_username": "kenji_t"}

    await consumer(pool).process(
        [
            upsert(user, 0, {**base, "time_zone": "Asia/Tokyo"}),
            upsert(user, 1, {**base, "first_name": "Kenji"}),  # no zone: kept
            upsert(user, 2, {**base, "time_zone": "Mars/Olympus"}),
        ]
    )

    row = await pool.fetchrow("SELECT first_name, time_zone FROM contacts")
    assert row is not None
    assert dict(row) == {"first_name": "Kenji", "time_zone": "Asia/Tokyo"}
    assert [(e["change"], e["time_zone"]) for e in await changed(pool)] == [
        ("created", "Asia/Tokyo"),
        ("updated", "Asia/Tokyo"),
    ]
    letters = await pool.fetch("SELECT headers FROM outbox WHERE topic LIKE '%.dlq'")
    assert len(letters) == 1
    assert "unknown time zone 'Mars/Olympus'" in letters[0]["headers"]["dlq-reason"]
