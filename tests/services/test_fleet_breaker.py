"""The fleet circuit breaker, wired (issue 14, item 4): the sender records each health change
(accounts.change_health), the scheduler's consumer of account.health_changed evaluates the
account's context before its batch commits, the sweep ends the hour's window; while tripped, no
send of the context is reserved (the sender defers it) or dispatched, and once it resets the
deferred send goes out with no manual step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import REGISTRY

from services.scheduler import breakers
from services.scheduler.app import create_service as scheduler_service
from services.scheduler.dispatch import QUERIES as DISPATCH
from services.sender import accounts
from shared.domain.accounts import AccountHealth
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.topics import Topic
from shared.messaging.transaction import transaction
from shared.settings import Settings
from tests.builders import FakeRecord
from tests.services.builders import FREE_PACE, ONE_SEND, step_due

NOW = datetime.now(UTC).replace(microsecond=0)
MIN = timedelta(minutes=1)
REASON = (
    "3 of 4 sending accounts are limited, frozen or in a flood cooldown within the last hour "
    "(pausing at 60%)"
)


def scheduler(pool: asyncpg.Pool[Any], now: datetime) -> Any:
    service = scheduler_service(Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y"))
    service._pool = pool  # as if started
    service.clock = FixedClock(now)
    return service


async def seed_fleet(
    pool: asyncpg.Pool[Any], count: int, *, organization: bool = True
) -> tuple[UUID | None, UUID, list[UUID]]:
    """An organization (or, not, a user in personal mode) with `count` active accounts."""
    user = await pool.fetchval(
        "INSERT INTO users (email) VALUES ($1) RETURNING id", f"{count}-{organization}@e.com"
    )
    org = None
    if organization:
        org = await pool.fetchval("INSERT INTO organizations (name) VALUES ('o') RETURNING id")
    ids = [
        await pool.fetchval(
            "INSERT INTO telegram_accounts (organization_id, owner_user_id, display_name,"
            " session_kind, health_status, pacing)"
            " VALUES ($1, $2, $3, 'simulated', 'active', $4) RETURNING id",
            org,
            user,
            f"a{i}",
            FREE_PACE,
        )
        for i in range(count)
    ]
    return org, user, ids


async def change(
    pool: asyncpg.Pool[Any], account: UUID, health: AccountHealth, now: datetime
) -> None:
    """The sender records a health change (its event in the outbox), then the scheduler's
    consumer takes the events written since the last call."""
    async with transaction(pool, FixedClock(now)) as tx:
        await accounts.change_health(tx.connection, tx.outbox, account, health, "test", now)
    await consume_account_events(pool, now)


async def consume_account_events(pool: asyncpg.Pool[Any], now: datetime) -> None:
    """Every account event so far, through the scheduler's consumer (its inbox takes each once)."""
    rows = await pool.fetch(
        "SELECT id, value FROM outbox WHERE topic = 'dripline.account.events' ORDER BY id"
    )
    service = scheduler(pool, now)
    consumer = BatchConsumer(
        name="scheduler",
        topic=Topic.ACCOUNT_EVENTS,
        handlers=service.handlers[Topic.ACCOUNT_EVENTS],
        pool=pool,
        clock=FixedClock(now),
    )
    await consumer.process(
        [FakeRecord(bytes(r["value"]), r["id"], topic=Topic.ACCOUNT_EVENTS.value) for r in rows]
    )


async def breaker(pool: asyncpg.Pool[Any]) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT tripped_at, reason, troubled, sending FROM fleet_breakers"
        " WHERE organization_id IS NOT NULL"
    )
    return None if row is None else dict(row)


async def breaker_events(pool: asyncpg.Pool[Any]) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch(
        "SELECT headers->>'message-type' AS type, value FROM outbox"
        " WHERE topic = 'dripline.organization.events' ORDER BY id"
    )
    return [(r["type"], json.loads(bytes(r["value"]))["payload"]) for r in rows]


async def seed_campaign(pool: asyncpg.Pool[Any], org: UUID | None, user: UUID,
                        account: UUID) -> tuple[UUID, UUID]:  # fmt: skip
    """An active campaign of the context sending from `account`, one execution due now."""
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (organization_id, created_by, name, status, telegram_account_id,"
        " flow) VALUES ($1, $2, 'c', 'active', $3, $4) RETURNING id",
        org,
        user,
        account,
        ONE_SEND,
    )
    contact = await pool.fetchval(
        "INSERT INTO contacts (organization_id, owner_user_id, telegram_username, first_name)"
        " VALUES ($1, $2, 'ada', 'Ada') RETURNING id",
        org,
        user,
    )
    execution: UUID = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at)"
        " VALUES ($1, $2, 'pending', $3) RETURNING id",
        campaign,
        contact,
        NOW,
    )
    return campaign, execution


async def claim_due(pool: asyncpg.Pool[Any], now: datetime) -> list[UUID]:
    rows = await pool.fetch(DISPATCH["claim_due"], now, now + MIN, 100)
    return [r["id"] for r in rows]


async def test_the_third_limited_account_of_four_trips_the_breaker_and_nothing_is_reserved(
    pool: asyncpg.Pool[Any],
) -> None:
    org, user, ids = await seed_fleet(pool, 4)
    campaign, execution = await seed_campaign(pool, org, user, ids[3])

    await change(pool, ids[0], AccountHealth.LIMITED, NOW)
    await change(pool, ids[1], AccountHealth.LIMITED, NOW)
    assert await breaker(pool) == {
        "tripped_at": None, "reason": None, "troubled": 2, "sending": 4,
    }  # fmt: skip
    await change(pool, ids[2], AccountHealth.LIMITED, NOW)
    assert await breaker(pool) == {"tripped_at": NOW, "reason": REASON, "troubled": 3, "sending": 4}
    assert await breaker_events(pool) == [
        ("organization.sending_paused", {
            "organization_id": str(org), "user_id": None, "troubled": 3, "sending": 4,
            "share": 0.6, "reason": REASON, "paused_since": NOW.isoformat().replace("+00:00", "Z"),
        }),
    ]  # fmt: skip

    # Dispatch skips the paused organization's due execution ...
    assert await claim_due(pool, NOW) == []
    # ... and a due event the sender is handed anyway reserves nothing: the send waits.
    lease = NOW + MIN
    await pool.execute("UPDATE executions SET lease_until = $1", lease)
    await step_due(pool, execution, campaign, ids[3], now=NOW, lease=lease)
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    row = await pool.fetchrow(
        "SELECT status, next_execution_at, lease_until, current_node_id FROM executions"
    )
    assert row is not None
    assert dict(row) == {
        "status": "pending",  # deferred: not failed, not paused
        "next_execution_at": NOW + timedelta(seconds=30),
        "lease_until": None,
        "current_node_id": "s1",
    }


async def test_the_breaker_holds_by_hysteresis_and_resets_when_the_window_passes(
    pool: asyncpg.Pool[Any],
) -> None:
    org, user, ids = await seed_fleet(pool, 4)
    campaign, execution = await seed_campaign(pool, org, user, ids[3])
    for account in ids[:3]:
        await change(pool, account, AccountHealth.LIMITED, NOW)
    assert (await breaker(pool) or {}).get("tripped_at") == NOW
    # Back to active: still in trouble within the hour (the last moment it was seen in it).
    await change(pool, ids[2], AccountHealth.ACTIVE, NOW + 10 * MIN)
    await change(pool, ids[0], AccountHealth.ACTIVE, NOW + 40 * MIN)
    await change(pool, ids[1], AccountHealth.ACTIVE, NOW + 40 * MIN)
    assert (await breaker(pool) or {}).get("troubled") == 3

    # 61 minutes after it left trouble, an account stops counting: 2 of 4 is below the 60% that
    # trips, but not below 60% - 10%: the breaker holds.
    assert await breakers.sweep(scheduler(pool, NOW + 71 * MIN)) == 1
    assert await breaker(pool) == {
        "tripped_at": NOW,
        "reason": REASON.replace("3 of 4", "2 of 4"),
        "troubled": 2,
        "sending": 4,
    }
    assert await claim_due(pool, NOW + 71 * MIN) == []

    # The window passes for the last two: it resets by itself.
    later = NOW + 101 * MIN
    assert await breakers.sweep(scheduler(pool, later)) == 1
    assert await breaker(pool) == {"tripped_at": None, "reason": None, "troubled": 0, "sending": 4}
    events = await breaker_events(pool)
    assert [t for t, _ in events] == ["organization.sending_paused", "organization.sending_resumed"]
    assert events[1][1]["reason"] is None
    assert events[1][1]["troubled"] == 0
    assert REGISTRY.get_sample_value("dripline_fleet_breakers_tripped") == 0
    # Nothing left to sweep; the deferred execution is dispatched and its send goes out.
    assert await breakers.sweep(scheduler(pool, later)) == 0
    assert await claim_due(pool, later) == [execution]
    lease = await pool.fetchval("SELECT lease_until FROM executions")
    await step_due(pool, execution, campaign, ids[3], now=later, lease=lease)
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 1
    assert await pool.fetchval("SELECT status FROM executions") == "completed"


async def test_personal_mode_has_its_own_breaker_with_the_defaults(
    pool: asyncpg.Pool[Any],
) -> None:
    _, user, personal = await seed_fleet(pool, 2, organization=False)
    _, _, organization = await seed_fleet(pool, 3)
    await change(pool, organization[0], AccountHealth.COOLDOWN, NOW)
    await change(pool, personal[0], AccountHealth.COOLDOWN, NOW)
    await change(pool, personal[1], AccountHealth.FROZEN, NOW)

    row = await pool.fetchrow(
        "SELECT tripped_at, troubled, sending FROM fleet_breakers WHERE user_id = $1", user
    )
    assert row is not None
    assert dict(row) == {"tripped_at": NOW, "troubled": 2, "sending": 2}
    # The organization's accounts are another context: 1 of 3, not paused.
    assert (await breaker(pool) or {}).get("tripped_at") is None
    [(kind, payload)] = await breaker_events(pool)
    assert (kind, payload["organization_id"], payload["user_id"]) == (
        "organization.sending_paused", None, str(user),
    )  # fmt: skip


async def test_an_organizations_own_share_is_used_and_a_changed_one_by_the_next_resweep(
    pool: asyncpg.Pool[Any],
) -> None:
    org, _, ids = await seed_fleet(pool, 4)
    await change(pool, ids[0], AccountHealth.LIMITED, NOW)
    await change(pool, ids[1], AccountHealth.FROZEN, NOW)
    assert (await breaker(pool) or {}).get("tripped_at") is None  # 2 of 4: below 60%
    # The organization lowers its share (as PATCH /organizations/{id} does): no health event
    # says so; the sweep evaluates a breaker that is not paused once a minute.
    await pool.execute(
        "UPDATE organizations SET settings = $2 WHERE id = $1",
        org,
        {"fleet_breaker": {"share": 0.5, "min_accounts": 2, "hysteresis": 0.1}},
    )
    assert await breakers.sweep(scheduler(pool, NOW + MIN / 2)) == 0
    assert await breakers.sweep(scheduler(pool, NOW + MIN)) == 1
    assert (await breaker(pool) or {}).get("tripped_at") == NOW + MIN  # 2 of 4 reaches 50%
    # Paused, it is evaluated by every sweep.
    assert await breakers.sweep(scheduler(pool, NOW + MIN)) == 1
