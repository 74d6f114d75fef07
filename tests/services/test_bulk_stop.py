"""A bulk stop (issue 17, item 1) while dispatch has executions in flight: every unfinished
execution is cancelled in the stop's own transaction (spec 000/001), finished ones are left as
they were, nothing of the stopped campaigns is claimed again or sent by a sender holding a due
event claimed before the stop, and the statistics the stats service derives from the stop's
events equal the recount. Migration 0025 changed the indexes the stop writes and reads; the
reads that used the dropped index are checked to walk the new ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.api.campaigns.contacts import CONTACTS as TAB
from services.scheduler.bulk_operations import QUERIES as BULK
from services.scheduler.bulk_operations import recorded_request, requester, start
from services.scheduler.changes import QUERIES as CHANGES
from services.scheduler.dispatch import dispatch_due
from services.scheduler.metrics import OPERATION_ITEMS, Tally
from services.stats.app import create_service as create_stats
from services.stats.verify import drift, repair
from shared.db.rows import BulkOperationRow
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.topics import Topic
from shared.messaging.transaction import transaction
from shared.runtime import Service
from shared.settings import Settings
from tests.builders import FakeRecord
from tests.services.builders import FREE_PACE, ONE_SEND, create_service_for, due_record

NOW = datetime.now(UTC).replace(microsecond=0)
# Per campaign: its executions by status (the due ones are claimed by dispatch before the stop).
STATUSES = {"pending": 4, "waiting": 1, "paused": 1, "running": 1, "completed": 2, "failed": 1}
UNFINISHED = STATUSES["pending"] + STATUSES["waiting"] + STATUSES["paused"] + STATUSES["running"]


async def seed(pool: asyncpg.Pool[Any], campaigns: int) -> tuple[UUID, UUID, list[UUID]]:
    """(user, account, campaigns): active campaigns of one account, executions in every status;
    pending ones are due."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('s@example.com') RETURNING id")
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        FREE_PACE,
    )
    ids = []
    for n in range(campaigns):
        campaign = await pool.fetchval(
            "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow,"
            " launched_at) VALUES ($1, $2, 'active', $3, $4, $5) RETURNING id",
            user,
            f"c{n}",
            account,
            ONE_SEND,
            NOW - timedelta(hours=1),
        )
        for status, count in STATUSES.items():
            await pool.execute(
                "WITH people AS (INSERT INTO contacts (owner_user_id, telegram_username)"
                " SELECT $1, $5::text || n FROM generate_series(1, $4) n RETURNING id)"
                " INSERT INTO executions (campaign_id, contact_id, status, next_execution_at,"
                " current_node_id, completed_at)"
                " SELECT $2, id, $3::text, $6::timestamptz,"
                " CASE WHEN $3::text = 'pending' THEN NULL ELSE 's1' END,"
                " CASE WHEN $3::text IN ('completed', 'failed') THEN $6::timestamptz END"
                " FROM people",
                user,
                campaign,
                status,
                count,
                f"{n}{status}",
                NOW - timedelta(minutes=1),
            )
        ids.append(campaign)
    return user, account, ids


def scheduler(pool: asyncpg.Pool[Any], settings: Settings) -> Service:
    service = Service("scheduler", settings, clock=FixedClock(NOW), description="test")
    service._pool = pool  # as if started: dispatch needs only the pool, the clock, the settings
    return service


async def bulk_stop(pool: asyncpg.Pool[Any], user: UUID, campaigns: list[UUID]) -> Any:
    """A bulk stop recorded and applied as the scheduler applies a request (one batch)."""
    async with transaction(pool, FixedClock(NOW)) as tx:
        recorded = await tx.connection.fetchrow(
            BULK["record_operation"], uuid4(), None, user, "stop",
            {"campaign_ids": [str(c) for c in campaigns]}, {"reset_completed": False},
            uuid4(), NOW, "http", NOW,
        )  # fmt: skip
        assert recorded is not None
        operation = BulkOperationRow.from_row(recorded)
        await start(tx, operation, recorded_request(operation), requester(operation), NOW,
                    len(campaigns), Tally(OPERATION_ITEMS))  # fmt: skip
        return await tx.connection.fetchrow(
            "SELECT * FROM bulk_operations WHERE id = $1", operation.id
        )


def sender_consumer(pool: asyncpg.Pool[Any]) -> BatchConsumer:
    """The sender's consumer of due events, run on records handed over here."""
    return BatchConsumer(
        name="sender", topic=Topic.EXECUTIONS_DUE,
        handlers=create_service_for(pool).handlers[Topic.EXECUTIONS_DUE],
        pool=pool, clock=FixedClock(NOW),
    )  # fmt: skip


async def drifted(pool: asyncpg.Pool[Any], campaigns: list[UUID]) -> list[Any]:
    async with pool.acquire() as connection:
        return await drift(connection, campaigns)


async def campaign_events(pool: asyncpg.Pool[Any]) -> list[FakeRecord]:
    rows = await pool.fetch(
        "SELECT key, value FROM outbox WHERE topic = $1 ORDER BY id", Topic.CAMPAIGN_EVENTS.value
    )
    return [
        FakeRecord(r["value"], n, key=r["key"], topic=Topic.CAMPAIGN_EVENTS.value)
        for n, r in enumerate(rows)
    ]


async def test_a_bulk_stop_during_a_dispatch_cancels_every_unfinished_execution_once(
    pool: asyncpg.Pool[Any], settings: Settings
) -> None:
    user, account, campaigns = await seed(pool, 3)
    async with pool.acquire() as connection:  # the statistics start equal to the recount
        await repair(connection, campaigns, NOW)
    assert await drifted(pool, campaigns) == []
    # Dispatch claims the due executions: their due events are on their way to a sender.
    claimed = await dispatch_due(scheduler(pool, settings))
    assert claimed == 3 * (STATUSES["pending"] + STATUSES["waiting"])
    in_flight = await pool.fetch("SELECT id, campaign_id, lease_until FROM executions"
                                 " WHERE lease_until IS NOT NULL")  # fmt: skip
    assert len(in_flight) == claimed

    stopped = await bulk_stop(pool, user, campaigns)

    assert (stopped["status"], stopped["success_count"]) == ("completed", 3)
    assert stopped["cancelled_executions"] == 3 * UNFINISHED
    by_status = dict(await pool.fetch("SELECT status, count(*) FROM executions GROUP BY status"))
    assert by_status == {
        "cancelled": 3 * UNFINISHED,
        "completed": 3 * STATUSES["completed"],
        "failed": 3 * STATUSES["failed"],
    }
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM executions WHERE status = 'cancelled'"
            " AND (lease_until IS NOT NULL OR completed_at <> $1 OR error_message IS NULL)",
            NOW,
        )
        == 0
    )
    # Nothing of a stopped campaign is claimed again ...
    assert await dispatch_due(scheduler(pool, settings)) == 0
    # ... and the due events claimed before the stop reach a sender that sends nothing.
    await sender_consumer(pool).process(
        [due_record(r["id"], r["campaign_id"], account, r["lease_until"]) for r in in_flight]
    )
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM executions WHERE status <> 'cancelled'"
            " AND status NOT IN ('completed', 'failed')"
        )
        == 0
    )
    # The statistics learn the cancellations from the stop's events alone.
    assert await drifted(pool, campaigns) != []
    stats = create_stats(Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y"))
    stats._pool = pool
    await BatchConsumer(
        name="stats", topic=Topic.CAMPAIGN_EVENTS, handlers=stats.handlers[Topic.CAMPAIGN_EVENTS],
        pool=pool, clock=FixedClock(NOW),
    ).process(await campaign_events(pool))  # fmt: skip
    assert await drifted(pool, campaigns) == []
    cancelled = await pool.fetchval(
        "SELECT sum(executions_cancelled) FROM campaign_stats WHERE campaign_id = ANY($1)",
        campaigns,
    )
    assert cancelled == 3 * UNFINISHED


# The reads that used executions_campaign_status_idx (dropped by 0025), with the index each one
# walks now. Sequential scans are off, so a read no index serves shows up as a Seq Scan.
READS = [
    ("the stop's cancel", "cancel_executions", "executions_unfinished_idx"),
    ("a pause", "pause_executions", "executions_unfinished_idx"),
    ("a resume", "resume_executions", "executions_unfinished_idx"),
    ("a recurring run's restart", "restart_finished_executions", "executions_finished_idx"),
]


@pytest.mark.parametrize(("what", "query", "index"), READS, ids=[r[0] for r in READS])
async def test_a_read_of_a_campaign_s_executions_by_status_walks_an_index(
    pool: asyncpg.Pool[Any], what: str, query: str, index: str
) -> None:
    _, _, (campaign,) = await seed(pool, 1)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("ANALYZE executions")
        await connection.execute("SET LOCAL enable_seqscan = off")
        arguments: tuple[Any, ...] = ([campaign], NOW)
        if query == "cancel_executions":
            arguments += ("stopped",)
        plan = "\n".join(
            r[0] for r in await connection.fetch(f"EXPLAIN {CHANGES[query]}", *arguments)
        )
    assert index in plan, f"{what}:\n{plan}"
    assert "Seq Scan on executions" not in plan, f"{what}:\n{plan}"


@pytest.mark.parametrize("status", [None, "pending", "paused", "completed", "failed", "cancelled"])
async def test_the_contacts_tab_by_status_walks_an_index(
    pool: asyncpg.Pool[Any], status: str | None
) -> None:
    _, _, (campaign,) = await seed(pool, 1)
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("ANALYZE executions")
        await connection.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await connection.fetch(
                f"EXPLAIN {TAB['executions']}", campaign, status, None, None, None, 50, None
            )
        )
    assert "Seq Scan on executions" not in plan, plan
