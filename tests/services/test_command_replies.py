"""Commands answered by outcome events (docs/architecture.md, "Request and reply"), with the
services in this process against a real database and broker: a bulk operation the API accepted
reads as queued until the scheduler records it, and a health check asked of the sender over
Kafka by another system is answered on dripline.account.events."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx

from services.api.accounts import create_user_with_key
from services.api.app import create_app
from services.api.replies import ReplyWaiter
from services.scheduler.app import create_service as scheduler
from services.sender.app import create_service as sender
from shared.messaging.contracts import AccountChecked, AccountHealthCheck, MessageType
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.builders import FLOW, ok
from tests.support import eventually, find_on_topic, produce, topic


@contextlib.asynccontextmanager
async def api_client(settings: Settings, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API in this process (its lifespan: pool, broker, relay), called through ASGI."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield client


async def test_an_accepted_bulk_operation_reads_as_queued_until_the_scheduler_records_it(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        ann = await create_user_with_key(connection, "queued@example.com")
        bob = await create_user_with_key(connection, "other@example.com")
    draft = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, flow) VALUES ($1, 'd', $2) RETURNING id",
        ann.user_id,
        FLOW,
    )
    async with api_client(settings, ann.plaintext) as api:
        accepted = await api.post(
            "/campaign-flows/bulk", json={"action": "disable", "campaign_ids": [str(draft)]}
        )
        assert accepted.status_code == 202, accepted.text
        operation = accepted.json()
        url = f"/bulk-operations/{operation['id']}"
        assert accepted.headers["location"] == url
        # No scheduler runs yet: nothing has recorded it, and it is still found.
        assert await pool.fetchval("SELECT count(*) FROM bulk_operations") == 0
        queued = ok(await api.get(url))
        assert queued == operation
        assert (queued["status"], queued["origin"], queued["requested_by_email"]) == (
            "queued",
            "http",
            "queued@example.com",
        )
        assert (queued["selection"], queued["options"], queued["total"]) == (
            {"campaign_ids": [str(draft)]},
            {"reset_completed": False},
            0,
        )
        assert ok(await api.get(f"{url}/items"))["items"] == []
        strangers = await api.get(url, headers={"Authorization": f"Bearer {bob.plaintext}"})
        assert strangers.status_code == 404

        async with scheduler(settings).running():

            async def completed() -> Any:
                found = ok(await api.get(url))
                return found if found["status"] == "completed" else None

            done = await eventually(completed)
    # Recorded by the scheduler as what the API accepted: asked for over HTTP, at that time.
    assert (done["origin"], done["created_at"], done["selection"]) == (
        "http",
        operation["created_at"],
        operation["selection"],
    )
    assert (done["total"], done["success_count"]) == (1, 1)
    assert await pool.fetchval("SELECT enabled FROM campaigns WHERE id = $1", draft) is False


async def test_a_bulk_operation_waited_for_is_answered_by_its_completed_event(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        ann = await create_user_with_key(connection, "waits@example.com")
    draft = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, flow) VALUES ($1, 'd', $2) RETURNING id",
        ann.user_id,
        FLOW,
    )
    async with api_client(settings, ann.plaintext) as api, scheduler(settings).running():
        answered = await api.post(
            "/campaign-flows/bulk",
            json={"action": "disable", "campaign_ids": [str(draft)], "wait": 20},
        )
    assert answered.status_code == 200, answered.text
    assert (answered.json()["status"], answered.json()["success_count"]) == ("completed", 1)


async def check_over_kafka(settings: Settings, account: UUID, actor: Actor) -> dict[str, Any]:
    """Publish account.check_health as another system would; the answer under its
    correlation id."""
    command = new_envelope(
        type="account.check_health",
        payload=AccountHealthCheck(telegram_account_id=account),
        occurred_at=datetime.now(UTC),
        actor=actor,
        correlation_id=uuid4(),
    )
    bootstrap = settings.bootstrap_servers
    await produce(
        bootstrap,
        topic(settings, Topic.ACCOUNT_COMMANDS),
        command.to_bytes(),
        str(account).encode(),
    )
    [answer] = await find_on_topic(
        bootstrap,
        topic(settings, Topic.ACCOUNT_EVENTS),
        lambda r: json.loads(r.value)["correlation_id"] == str(command.correlation_id),
    )
    message: dict[str, Any] = json.loads(answer.value)
    assert (message["type"], message["causation_id"]) == (
        "account.checked",
        str(command.message_id),
    )
    return message


async def test_a_health_check_asked_over_kafka_is_answered(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        owner = (await create_user_with_key(connection, "owner@example.com")).user_id
        stranger = (await create_user_with_key(connection, "stranger@example.com")).user_id
    # Checked a moment ago, so the periodic check leaves it alone: only the command probes it.
    inserted = await pool.fetchrow(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " simulation, last_checked_at) VALUES ($1, 'a', 'simulated', 'active', $2, now())"
        " RETURNING id, last_checked_at",
        owner,
        {"revoked": True},
    )
    assert inserted is not None
    account = inserted["id"]
    async with sender(settings).running():
        found = await check_over_kafka(settings, account, Actor(user_id=owner))
        refused = await check_over_kafka(settings, account, Actor(user_id=stranger))
    assert found["payload"]["result"] == "checked"
    assert found["payload"]["status"] == "auth_lost"
    assert "SessionRevokedError" in found["payload"]["detail"]
    # What the check found is recorded, and its transition is an event of its own.
    row = await pool.fetchrow(
        "SELECT health_status, last_checked_at FROM telegram_accounts WHERE id = $1", account
    )
    assert row is not None
    assert row["health_status"] == "auth_lost"
    assert row["last_checked_at"] > inserted["last_checked_at"]
    changed = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'account.health_changed'"
        " AND key = convert_to($1, 'UTF8')",
        str(account),
    )
    assert changed == 1
    # Someone who cannot see the account learns nothing and changes nothing.
    assert (refused["payload"]["result"], refused["payload"]["status"]) == ("not_found", None)


async def test_the_waiter_resolves_a_request_only_with_an_event_that_answers_it() -> None:
    waiter = ReplyWaiter()
    awaited, account = uuid4(), uuid4()

    def event(kind: str, correlation_id: UUID) -> bytes:
        payload = AccountChecked(
            telegram_account_id=account, result="checked", status="active", detail=None
        )
        return new_envelope(
            type=kind, payload=payload, occurred_at=datetime.now(UTC), actor=None,
            correlation_id=correlation_id,
        ).to_bytes()  # fmt: skip

    async with waiter.expect(awaited, [MessageType.ACCOUNT_CHECKED]) as reply:
        # Only records under a waiting correlation id are decoded (or without the header).
        assert waiter.awaited([("correlation-id", str(awaited).encode())])
        assert not waiter.awaited([("correlation-id", str(uuid4()).encode())])
        assert not waiter.awaited([("correlation-id", b"not a uuid")])
        assert waiter.awaited([])
        waiter.deliver(Topic.ACCOUNT_EVENTS, event("account.checked", uuid4()))
        waiter.deliver(Topic.ACCOUNT_EVENTS, b"not an envelope")
        assert not reply.done()
        waiter.deliver(Topic.ACCOUNT_EVENTS, event("account.checked", awaited))
        assert reply.done()
        answer = reply.result().payload
        assert isinstance(answer, AccountChecked)
        assert answer.telegram_account_id == account
    assert not waiter.awaited([("correlation-id", str(awaited).encode())])
