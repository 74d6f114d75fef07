"""A bulk delete_contacts batch locks in the order a sender step does: the contacts' executions
first (in id order), then the contacts (in id order). A step holds its execution and then writes
its contact (a tag node); a batch that took the contact first would wait on the execution while
the step waited on the contact: a deadlock, one of the two transactions aborted."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import asyncpg

from services.scheduler.bulk_actions import Batch, Outcome, _delete
from services.sender.executions import QUERIES as EXECUTIONS
from services.sender.writer import QUERIES as WRITER
from shared.domain.clock import FixedClock
from shared.messaging.transaction import transaction
from tests.support import eventually

NOW = datetime.now(UTC).replace(microsecond=0)


async def seed(pool: asyncpg.Pool[Any]) -> tuple[UUID, UUID]:
    """One contact in one active campaign: (contact, its execution)."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('l@example.com') RETURNING id")
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status)"
        " VALUES ($1, 'sim', 'simulated', 'active') RETURNING id",
        user,
    )
    campaign = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id)"
        " VALUES ($1, 'c', 'active', $2) RETURNING id",
        user,
        account,
    )
    contact: UUID = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, 'x') RETURNING id",
        user,
    )
    execution: UUID = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at)"
        " VALUES ($1, $2, 'pending', $3) RETURNING id",
        campaign,
        contact,
        NOW,
    )
    return contact, execution


async def delete_batch(pool: asyncpg.Pool[Any], ids: list[UUID]) -> dict[UUID, Outcome]:
    """One delete_contacts batch, applied as the scheduler applies it (the action row is not
    read by this kind)."""
    async with transaction(pool, FixedClock(NOW)) as tx:
        return await _delete(Batch(tx, cast(Any, None), ids, {}, NOW))


async def waiting_on_a_lock(pool: asyncpg.Pool[Any]) -> bool:
    waiting: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return waiting > 0


async def test_a_bulk_delete_waits_for_a_step_holding_the_execution_without_deadlock(
    pool: asyncpg.Pool[Any],
) -> None:
    contact, execution = await seed(pool)
    async with pool.acquire() as step:
        transaction_ = step.transaction()
        await transaction_.start()
        # The step locks its execution (sender/executions.sql) ...
        assert await step.fetchrow(EXECUTIONS["lock_executions"], [execution], [None]) is not None
        deleting = asyncio.create_task(delete_batch(pool, [contact]))
        # ... the batch starts and waits behind it ...
        await eventually(lambda: waiting_on_a_lock(pool), timeout_s=30)
        # ... and the step's tag node writes the contact (sender/writer.sql): with the contact
        # already locked by the batch, PostgreSQL would abort one of the two as a deadlock.
        await step.execute(WRITER["set_contact_tags"], contact, ["tagged"], NOW)
        await transaction_.commit()
    outcomes = await asyncio.wait_for(deleting, 60)
    assert outcomes[contact].status == "succeeded", outcomes
    assert await pool.fetchval("SELECT tags FROM contacts WHERE id = $1", contact) == ["tagged"]
    assert (
        await pool.fetchval("SELECT status FROM executions WHERE id = $1", execution) == "cancelled"
    )
