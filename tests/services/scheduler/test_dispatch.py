"""Dispatch's backpressure (issue 17, item 2): it claims only while fewer than
`dispatch_max_in_flight` executions hold a live lease, so a backlog is leased at the senders'
pace and no lease runs out before a sender reaches it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.scheduler.dispatch import dispatch_due
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
