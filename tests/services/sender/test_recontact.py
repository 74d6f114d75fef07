"""recontact_after_days at send time (issue 15, item 4): the sender's load query brings when
another execution last messaged the person, and reach refuses the first send of an execution
to someone messaged by another campaign of the organization within that many days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from tests.services.builders import FREE_PACE, ONE_SEND, step_due

NOW = datetime.now(UTC).replace(microsecond=0)


async def seed(pool: asyncpg.Pool[Any], days: int | None) -> tuple[UUID, UUID, UUID, UUID, UUID]:
    """An organization's two campaigns A and B to one contact, B's execution due:
    (account, campaign B, contact, execution A, execution B)."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('r@example.com') RETURNING id")
    org = await pool.fetchval(
        "INSERT INTO organizations (name, settings) VALUES ('o', $1) RETURNING id",
        {} if days is None else {"recontact_after_days": days},
    )
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, organization_id, display_name,"
        " session_kind, health_status, pacing) VALUES ($1, $2, 'sim', 'simulated', 'active', $3)"
        " RETURNING id",
        user,
        org,
        FREE_PACE,
    )
    a, b = [
        await pool.fetchval(
            "INSERT INTO campaigns (created_by, organization_id, name, status,"
            " telegram_account_id, flow) VALUES ($1, $2, $3, 'active', $4, $5) RETURNING id",
            user,
            org,
            name,
            account,
            ONE_SEND,
        )
        for name in ("A", "B")
    ]
    contact = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, organization_id, telegram_username)"
        " VALUES ($1, $2, 'twice_asked') RETURNING id",
        user,
        org,
    )
    in_a = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status) VALUES ($1, $2, 'completed')"
        " RETURNING id",
        a,
        contact,
    )
    in_b = await pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at, lease_until)"
        " VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
        b,
        contact,
        NOW,
        NOW + timedelta(seconds=60),
    )
    return account, b, contact, in_a, in_b


async def messaged(
    pool: asyncpg.Pool[Any], execution: UUID, contact: UUID, ago: timedelta, node: str = "x"
) -> None:
    await pool.execute(
        "INSERT INTO messages (campaign_id, execution_id, contact_id, node_id, direction, body,"
        " status, sent_at) SELECT campaign_id, id, $2, $4, 'outgoing', 'hi', 'delivered', $3"
        " FROM executions WHERE id = $1",
        execution,
        contact,
        NOW - ago,
        node,
    )


@pytest.mark.parametrize(
    ("days", "a_sent_ago", "b_sent_before", "refused"),
    [
        (30, timedelta(days=5), False, True),  # A messaged them 5 days ago: B may not
        (None, timedelta(days=5), False, False),  # the setting is off
        (30, timedelta(days=31), False, False),  # long enough ago
        (30, None, False, False),  # nobody messaged them
        (30, timedelta(days=5), True, False),  # B's follow-up: its conversation goes on
    ],
)
async def test_the_first_send_to_a_recently_contacted_person_is_refused(
    pool: asyncpg.Pool[Any],
    days: int | None,
    a_sent_ago: timedelta | None,
    b_sent_before: bool,
    refused: bool,
) -> None:
    account, campaign_b, contact, in_a, in_b = await seed(pool, days)
    if a_sent_ago is not None:
        await messaged(pool, in_a, contact, a_sent_ago)
    if b_sent_before:
        await messaged(pool, in_b, contact, timedelta(days=6), node="earlier")

    await step_due(pool, in_b, campaign_b, account, now=NOW, lease=NOW + timedelta(seconds=60))

    row = await pool.fetchrow("SELECT status, error_message FROM executions WHERE id = $1", in_b)
    assert row is not None
    sent = await pool.fetchval("SELECT count(*) FROM simulator_messages")
    if refused:
        assert sent == 0
        assert (row["status"], row["error_message"]) == ("cancelled", "recently_contacted")
        logged = await pool.fetchval(
            "SELECT message FROM execution_logs WHERE event = 'send_skipped'"
        )
        assert logged == "recently_contacted"
    else:
        assert sent == 1
        assert row["error_message"] is None
