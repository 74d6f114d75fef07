"""The do-not-contact list honoured at send time (issue 15, item 2): the sender's load query
says whether the contact is listed (by any of its identifiers, in its own list), and reach
refuses the send: the execution is cancelled with `do_not_contact` and nothing reaches
Telegram. An entry in another list does not stop it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.services.builders import FREE_PACE, ONE_SEND, step_due

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = NOW + timedelta(seconds=60)


async def seed(pool: asyncpg.Pool[Any]) -> tuple[UUID, UUID, UUID, UUID, UUID]:
    """A personal-mode user's active campaign with one due execution to @Listed_One
    (+49 151 2345678, user id 4242): (user, account, campaign, contact, execution)."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('n@example.com') RETURNING id")
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
    contact = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username, phone, telegram_user_id)"
        " VALUES ($1, 'Listed_One', '+491512345678', 4242) RETURNING id",
        user,
    )
    execution = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at, lease_until)"
        " VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
        campaign,
        contact,
        NOW,
        LEASE,
    )
    return user, account, campaign, contact, execution


async def step(pool: asyncpg.Pool[Any], execution: UUID, campaign: UUID, account: UUID) -> None:
    await step_due(pool, execution, campaign, account, now=NOW, lease=LEASE)


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("contact", None),  # the contact's own id
        ("username", "listed_one"),  # stored lower-case: the contact's is not
        ("phone", "491512345678"),  # stored as digits: the contact's has a +
        ("telegram_user_id", "4242"),
    ],
)
async def test_a_listed_contacts_due_send_is_refused(
    pool: asyncpg.Pool[Any], kind: str, value: str | None
) -> None:
    user, account, campaign, contact, execution = await seed(pool)
    await pool.execute(
        "INSERT INTO do_not_contact (user_id, kind, value, reason, source, created_at)"
        " VALUES ($1, $2, $3, 'manual', 'api', $4)",
        user,
        kind,
        value or str(contact),
        NOW,
    )

    await step(pool, execution, campaign, account)

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    row = await pool.fetchrow("SELECT status, error_message FROM executions")
    assert row is not None
    assert (row["status"], row["error_message"]) == ("cancelled", "do_not_contact")
    logged = await pool.fetchval("SELECT message FROM execution_logs WHERE event = 'send_skipped'")
    assert logged == "do_not_contact"


async def test_an_entry_in_another_list_does_not_stop_the_send(pool: asyncpg.Pool[Any]) -> None:
    _, account, campaign, _, execution = await seed(pool)
    other = await pool.fetchval("INSERT INTO users (email) VALUES ('o@example.com') RETURNING id")
    await pool.execute(
        "INSERT INTO do_not_contact (user_id, kind, value, reason, source, created_at)"
        " VALUES ($1, 'username', 'listed_one', 'manual', 'api', $2)",
        other,
        NOW,
    )

    await step(pool, execution, campaign, account)

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 1
    assert await pool.fetchval("SELECT error_message FROM executions") is None
