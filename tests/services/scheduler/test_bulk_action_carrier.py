"""A send-message bulk action's carrier campaign starts through the campaign state machine, like
every other campaign change: its first batch moves it from draft to active and announces it with
campaign.status_changed (issue 18, item 4; it used to be a bare UPDATE that emitted nothing)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.scheduler.bulk_actions import release
from shared.db.rows import BulkActionRow
from shared.domain.clock import FixedClock
from shared.messaging.transaction import transaction
from tests.builders import END, SEND, edge, flow

NOW = datetime.now(UTC).replace(microsecond=0)


async def seed(pool: asyncpg.Pool[Any], contacts: int) -> tuple[UUID, UUID, UUID]:
    """A user, their account and contacts, and a queued send-message action with its carrier,
    as the API creates them."""
    user: UUID = await pool.fetchval(
        "INSERT INTO users (email) VALUES ('carrier@example.com') RETURNING id"
    )
    account: UUID = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status)"
        " VALUES ($1, 'sim', 'simulated', 'active') RETURNING id",
        user,
    )
    ids = [
        await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, $2) RETURNING id",
            user,
            f"carried{i}",
        )
        for i in range(contacts)
    ]
    action: UUID = await pool.fetchval(
        "INSERT INTO bulk_actions (created_by, name, action, mode, selection, params,"
        " next_batch_at) VALUES ($1, 'Hello all', 'send_message', 'all_at_once', $2, $3, $4)"
        " RETURNING id",
        user,
        {"contact_ids": [str(i) for i in ids]},
        {"telegram_account_id": str(account), "text": "Hi"},
        NOW,
    )
    carrier: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, telegram_account_id, flow, launch_type,"
        " bulk_action_id) VALUES ($1, 'Bulk message: Hello all', $2, $3, 'manual', $4)"
        " RETURNING id",
        user,
        account,
        flow([SEND, END], [edge("hello", "end")]),
        action,
    )
    return user, action, carrier


async def test_the_carrier_starts_with_its_status_event(pool: asyncpg.Pool[Any]) -> None:
    user, action_id, carrier = await seed(pool, 3)
    clock = FixedClock(NOW)
    async with transaction(pool, clock) as tx:
        action = await tx.connection.fetchrow("SELECT * FROM bulk_actions WHERE id = $1", action_id)
        assert action is not None
        await release(tx, BulkActionRow.from_row(action), NOW)

    row = await pool.fetchrow(
        "SELECT status, launched_at, enabled FROM campaigns WHERE id = $1", carrier
    )
    assert row is not None
    assert (row["status"], row["launched_at"], row["enabled"]) == ("active", NOW, True)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM executions WHERE campaign_id = $1 AND status = 'pending'", carrier
        )
        == 3
    )
    events = await pool.fetch(
        "SELECT key, value FROM outbox WHERE headers->>'message-type' = 'campaign.status_changed'"
    )
    assert len(events) == 1
    envelope = json.loads(bytes(events[0]["value"]))
    assert bytes(events[0]["key"]) == str(carrier).encode()
    assert envelope["actor"]["user_id"] == str(user)
    payload = envelope["payload"]
    assert {k: payload[k] for k in ("campaign_id", "previous_status", "status", "enabled")} == {
        "campaign_id": str(carrier),
        "previous_status": "draft",
        "status": "active",
        "enabled": True,
    }
    assert payload["cause"] == "bulk_action.send_message"


async def test_a_carrier_no_longer_in_draft_is_not_started_again(pool: asyncpg.Pool[Any]) -> None:
    """The state machine refuses to start a carrier that is not a draft: nothing changes and
    nothing is announced (the bare UPDATE's `status = 'draft'` condition, kept)."""
    _, action_id, carrier = await seed(pool, 1)
    await pool.execute("UPDATE campaigns SET status = 'paused' WHERE id = $1", carrier)
    async with transaction(pool, FixedClock(NOW)) as tx:
        action = await tx.connection.fetchrow("SELECT * FROM bulk_actions WHERE id = $1", action_id)
        assert action is not None
        await release(tx, BulkActionRow.from_row(action), NOW)

    assert await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", carrier) == "paused"
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'campaign.status_changed'"
        )
        == 0
    )
