"""Dispatch's backpressure (issue 17, item 2): it claims only while fewer than
`dispatch_max_in_flight` executions hold a live lease, so a backlog is leased at the senders'
pace and no lease runs out before a sender reaches it. And its cadence (item 5): it runs every
`dispatch_interval_s`, more often than the other sweeps."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.scheduler.app import create_service
from services.scheduler.dispatch import QUERIES as DISPATCH
from services.scheduler.dispatch import dispatch_due
from shared.db.pool import fetch_replanned
from shared.domain.clock import FixedClock
from shared.messaging.topics import Topic
from shared.runtime import Service
from shared.settings import Settings
from tests.services.builders import FREE_PACE, ONE_SEND

NOW = datetime.now(UTC).replace(microsecond=0)
BACKLOG = 120
BOUND = 50


async def seed_backlog(pool: asyncpg.Pool[Any]) -> None:
    """One active campaign whose BACKLOG executions were all due a minute ago."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('b@example.com') RETURNING id")
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        FREE_PACE,
    )
    campaign = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow)"
        " VALUES ($1, 'c', 'active', $2, $3) RETURNING id",
        user,
        account,
        ONE_SEND,
    )
    await pool.execute(
        "WITH people AS (INSERT INTO contacts (owner_user_id, telegram_username)"
        " SELECT $1, 'p' || n FROM generate_series(1, $3) n RETURNING id)"
        " INSERT INTO executions (campaign_id, contact_id, next_execution_at)"
        " SELECT $2, id, $4 FROM people",
        user,
        campaign,
        BACKLOG,
        NOW - timedelta(minutes=1),
    )


def scheduler(pool: asyncpg.Pool[Any], settings: Settings, at: datetime) -> Service:
    service = Service("scheduler", settings, clock=FixedClock(at), description="test")
    service._pool = pool  # as if started: dispatch needs only the pool, the clock, the settings
    return service


async def emitted(pool: asyncpg.Pool[Any]) -> int:
    return int(
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1", Topic.EXECUTIONS_DUE.value
        )
    )


@pytest.mark.settings(dispatch_max_in_flight=BOUND, lease_s=60)
async def test_dispatch_leases_no_more_than_the_bound_and_refills_as_senders_step(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    await seed_backlog(pool)

    assert await dispatch_due(scheduler(pool, settings, NOW)) == BOUND
    assert await emitted(pool) == BOUND
    # Nothing was stepped: a later sweep inside the leases claims nothing more.
    assert await dispatch_due(scheduler(pool, settings, NOW + timedelta(seconds=5))) == 0

    # A sender steps 30 of them (a step clears the lease): the bound refills by as many.
    await pool.execute(
        "UPDATE executions SET status = 'completed', lease_until = NULL, completed_at = $1"
        " WHERE id IN (SELECT id FROM executions WHERE lease_until IS NOT NULL LIMIT 30)",
        NOW,
    )
    assert await dispatch_due(scheduler(pool, settings, NOW + timedelta(seconds=6))) == 30
    leased = await pool.fetchval(
        "SELECT count(*) FROM executions WHERE lease_until > $1", NOW + timedelta(seconds=6)
    )
    assert leased == BOUND
    assert await emitted(pool) == BOUND + 30


@pytest.mark.settings(dispatch_max_in_flight=BOUND, lease_s=60)
async def test_a_lease_that_ran_out_no_longer_counts_and_is_claimed_again(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    await seed_backlog(pool)
    assert await dispatch_due(scheduler(pool, settings, NOW)) == BOUND

    # The sender died holding them: once the leases run out, dispatch claims again, oldest
    # first, up to the bound (the same executions come back among them).
    later = NOW + timedelta(seconds=61)
    assert await dispatch_due(scheduler(pool, settings, later)) == BOUND
    assert (
        await pool.fetchval("SELECT count(*) FROM executions WHERE lease_until > $1", later)
        == BOUND
    )


@pytest.mark.settings(dispatch_max_in_flight=10_000)
async def test_under_the_bound_one_sweep_claims_the_whole_backlog(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    await seed_backlog(pool)
    assert await dispatch_due(scheduler(pool, settings, NOW)) == BACKLOG
    assert await dispatch_due(scheduler(pool, settings, NOW)) == 0


@pytest.mark.settings(sweep_interval_s=5, dispatch_interval_s=0.05)
async def test_dispatch_runs_every_dispatch_interval_not_every_sweep(settings: Settings) -> None:
    """Issue 17, item 5: the pause between two dispatches is what a waiting execution's next step
    may be late by, so dispatch has its own, shorter interval; the other sweeps keep theirs."""
    service = create_service(settings)
    assert service.intervals["dispatch_due"] == 0.05
    assert "finish_runs" not in service.intervals  # every sweep_interval_s

    runs = {"dispatch_due": 0, "finish_runs": 0}

    def counting(name: str) -> Callable[[Service], Awaitable[None]]:
        async def job(_: Service) -> None:
            runs[name] += 1

        return job

    tasks = [asyncio.create_task(service._repeat(name, counting(name))) for name in runs]
    await asyncio.sleep(0.6)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert runs["dispatch_due"] >= 5
    assert runs["finish_runs"] == 1


@pytest.mark.settings(sweep_interval_s=0.1, dispatch_interval_s=0.2)
async def test_dispatch_is_never_less_often_than_the_sweeps(settings: Settings) -> None:
    assert create_service(settings).intervals["dispatch_due"] == 0.1


async def test_a_claim_locks_only_the_executions_it_leases(pool: asyncpg.Pool[Any]) -> None:
    """A claim for 10 of a backlog of 120 leaves the other 110 unlocked while its transaction
    lasts. It locked a fixed slice of 2,000 before, writing a row lock into every tuple of it
    for the few hundred it leased."""
    await seed_backlog(pool)
    async with pool.acquire() as claimer, pool.acquire() as other, claimer.transaction():
        claimed = await fetch_replanned(
            claimer, DISPATCH["claim_due"], NOW, NOW + timedelta(minutes=1), 10
        )
        free = await other.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM executions FOR UPDATE SKIP LOCKED) AS f"
        )
    assert len(claimed) == 10
    assert free == BACKLOG - 10
