"""A due send of an account already known to be dead (banned, auth lost, a session conflict) is
interrupted, not failed (issue 16): the execution is paused standing on that send, with the
reason, exactly as the scheduler pauses the campaign's other executions on the account's health
event, so a relaunch on a fixed or another account sends it. Before, pacing's refusal failed it,
and a relaunch could never reach that contact (the CI run of d869a14 caught it)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.services.builders import create_service_for, due_record
from tests.services.sender.test_deletion import FIRST_LEASE, NOW, consumer_at, progressed, seed


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
