"""Deletion honoured at send time (issue 15, item 1): the sender checks, in the step's own
transaction right before it reserves a send, that the contact and the account are not deleted.
A deleted contact's execution is cancelled (`contact_deleted`), a deleted account's waits
(`account_deleted`); either way nothing reaches Telegram and the skip is logged. Dispatch does
not emit the executions of a deleted account."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.scheduler.dispatch import QUERIES as DISPATCH
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer, HandlerContext
from shared.messaging.contracts import MessageType, decode
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic
from tests.services.builders import create_service_for, due_record

NOW = datetime.now(UTC).replace(microsecond=0)
FIRST_LEASE = NOW + timedelta(seconds=60)
SECOND_LEASE = NOW + timedelta(seconds=180)
LATER = NOW + timedelta(seconds=120)  # the first lease has run out
FREE_PACE = {"min_gap_s": 0, "jitter_s": 0, "daily_new_peers": 1000}

ONE_SEND: dict[str, Any] = {
    "start": "s1",
    "nodes": [
        {"id": "s1", "type": "send_message", "text": "hello"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "s1", "to": "end"}],
}


async def seed(pool: asyncpg.Pool[Any], lease: datetime | None) -> tuple[UUID, UUID, UUID, UUID]:
    """One active campaign of one account with one due execution: (account, campaign, contact,
    execution)."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('d@example.com') RETURNING id")
    account: UUID = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        FREE_PACE,
    )
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow)"
        " VALUES ($1, 'c', 'active', $2, $3) RETURNING id",
        user,
        account,
        ONE_SEND,
    )
    contact: UUID = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
        " VALUES ($1, 'gone', 'Di') RETURNING id",
        user,
    )
    execution: UUID = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at, lease_until)"
        " VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
        campaign,
        contact,
        NOW,
        lease,
    )
    return account, campaign, contact, execution


def consumer_at(pool: asyncpg.Pool[Any], service: Any, now: datetime) -> BatchConsumer:
    return BatchConsumer(
        name="sender",
        topic=Topic.EXECUTIONS_DUE,
        handlers=service.handlers[Topic.EXECUTIONS_DUE],
        pool=pool,
        clock=FixedClock(now),
    )


async def progressed(pool: asyncpg.Pool[Any]) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE headers->>'message-type' = 'execution.progressed'"
        " ORDER BY id"
    )
    return [json.loads(bytes(row["value"]))["payload"] for row in rows]


async def test_a_deleted_contacts_due_send_is_not_made_and_its_execution_is_cancelled(
    pool: asyncpg.Pool[Any],
) -> None:
    account, campaign, contact, execution = await seed(pool, FIRST_LEASE)
    await pool.execute("UPDATE contacts SET deleted_at = $2 WHERE id = $1", contact, NOW)

    service = create_service_for(pool)
    await consumer_at(pool, service, NOW).process(
        [due_record(execution, campaign, account, FIRST_LEASE)]
    )

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    row = await pool.fetchrow(
        "SELECT status, error_message, completed_at, lease_until FROM executions"
    )
    assert row is not None
    assert dict(row) == {
        "status": "cancelled",
        "error_message": "contact_deleted",
        "completed_at": NOW,
        "lease_until": None,
    }
    logs = await pool.fetch("SELECT node_id, event, status, message FROM execution_logs")
    assert [dict(r) for r in logs] == [
        {
            "node_id": "s1",
            "event": "send_skipped",
            "status": "skipped",
            "message": "contact_deleted",
        }
    ]
    # The statistics learn of it: the event names the execution.
    events = [
        (e["execution_id"], e["previous_status"], e["status"], e["detail"])
        for e in await progressed(pool)
    ]
    assert events == [(str(execution), "pending", "cancelled", "contact_deleted")]


async def test_a_deleted_accounts_due_send_is_not_made_and_its_execution_waits(
    pool: asyncpg.Pool[Any],
) -> None:
    account, campaign, _, execution = await seed(pool, FIRST_LEASE)
    await pool.execute("UPDATE telegram_accounts SET deleted_at = $2 WHERE id = $1", account, NOW)

    service = create_service_for(pool)
    await consumer_at(pool, service, NOW).process(
        [due_record(execution, campaign, account, FIRST_LEASE)]
    )

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    row = await pool.fetchrow(
        "SELECT status, error_message, completed_at, lease_until, current_node_id FROM executions"
    )
    assert row is not None
    assert dict(row) == {
        "status": "waiting",
        "error_message": "account_deleted",
        "completed_at": None,
        "lease_until": None,
        "current_node_id": None,  # where it stood: it resumes from there
    }
    logs = await pool.fetch("SELECT node_id, event, status, message FROM execution_logs")
    assert [dict(r) for r in logs] == [
        {
            "node_id": "s1",
            "event": "send_skipped",
            "status": "skipped",
            "message": "account_deleted",
        }
    ]
    # No account budget was spent on it.
    assert await pool.fetchval("SELECT last_send_at FROM telegram_accounts") is None


async def test_a_queued_send_of_a_contact_deleted_before_the_resend_is_not_resent(
    pool: asyncpg.Pool[Any],
) -> None:
    """A send claimed (its record queued) and then lost with its sender; the contact is deleted
    before the lease brings the execution back: the re-send is not made."""
    account, campaign, contact, execution = await seed(pool, FIRST_LEASE)
    service = create_service_for(pool)
    handler = service.handlers[Topic.EXECUTIONS_DUE][MessageType.EXECUTION_DUE.value]
    record = due_record(execution, campaign, account, FIRST_LEASE)
    async with pool.acquire() as connection, connection.transaction():
        context = HandlerContext(connection, Outbox(), FixedClock(NOW), "sender")
        await handler(context, [decode(Topic.EXECUTIONS_DUE, record.value)])
    assert len(context.after_commit) == 1  # the send the crash loses
    assert await pool.fetchval("SELECT status FROM messages") == "queued"

    await pool.execute("UPDATE contacts SET deleted_at = $2 WHERE id = $1", contact, LATER)
    await pool.execute("UPDATE executions SET lease_until = $1", SECOND_LEASE)
    await consumer_at(pool, service, LATER).process(
        [due_record(execution, campaign, account, SECOND_LEASE)]
    )

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    # The unsent record goes: the statistics would count it as in flight for ever.
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    row = await pool.fetchrow("SELECT status, error_message FROM executions")
    assert row is not None
    assert (row["status"], row["error_message"]) == ("cancelled", "contact_deleted")


async def test_dispatch_does_not_claim_the_executions_of_a_deleted_account(
    pool: asyncpg.Pool[Any],
) -> None:
    account, _, _, execution = await seed(pool, None)
    await pool.execute("UPDATE telegram_accounts SET deleted_at = $2 WHERE id = $1", account, NOW)
    lease = NOW + timedelta(seconds=60)
    assert await pool.fetch(DISPATCH["claim_due"], NOW, lease, 2000) == []

    await pool.execute("UPDATE telegram_accounts SET deleted_at = NULL WHERE id = $1", account)
    claimed = await pool.fetch(DISPATCH["claim_due"], NOW, lease, 2000)
    assert [r["id"] for r in claimed] == [execution]


# A due send of an account already known to be dead (banned, auth lost, a session conflict) is
# interrupted, not failed (issue 16): the execution is paused standing on that send, with the
# reason, exactly as the scheduler pauses the campaign's other executions on the account's health
# event, so a relaunch on a fixed or another account sends it. Before, pacing's refusal failed it,
# and a relaunch could never reach that contact (the CI run of d869a14 caught it).
@pytest.mark.parametrize("health", ["banned", "auth_lost", "session_conflict"])
async def test_a_due_send_of_a_dead_account_is_paused_on_that_send_not_failed(
    pool: asyncpg.Pool[Any], health: str
) -> None:
    account, campaign, _, execution = await seed(pool, FIRST_LEASE)
    await pool.execute(
        "UPDATE telegram_accounts SET health_status = $2 WHERE id = $1", account, health
    )

    service = create_service_for(pool)
    await consumer_at(pool, service, NOW).process(
        [due_record(execution, campaign, account, FIRST_LEASE)]
    )

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    row = await pool.fetchrow(
        "SELECT status, error_message, completed_at, lease_until, current_node_id FROM executions"
    )
    assert row is not None
    assert dict(row) == {
        "status": "paused",
        "error_message": f"the account is {health}",
        "completed_at": None,
        "lease_until": None,
        "current_node_id": "s1",  # standing on the send a relaunch makes
    }
    events = [(e["previous_status"], e["status"]) for e in await progressed(pool)]
    assert events == [("pending", "paused")]
    # Resumed (as a relaunch does), the same send goes out once.
    await pool.execute(
        "UPDATE telegram_accounts SET health_status = 'active' WHERE id = $1", account
    )
    await pool.execute(
        "UPDATE executions SET status = 'pending', error_message = NULL,"
        " next_execution_at = $1, lease_until = $2",
        NOW,
        FIRST_LEASE,
    )
    await consumer_at(pool, service, NOW).process(
        [due_record(execution, campaign, account, FIRST_LEASE)]
    )
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 1
    assert await pool.fetchval("SELECT status FROM executions") == "completed"
