"""Opt-out by reply (issue 15, item 3), applied by the sender's updates against a real
database: a reply saying an opt-out phrase lists the person under each of their identifiers,
completes the execution replied to with opted_out and cancels their executions in every other
campaign, in the transaction that records the reply; the statistics recount counts it. Another
reply steers the flow as before, and an organization's own phrases replace the defaults."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.sender.gateway import Incoming
from services.sender.updates import Detected, apply
from shared.messaging.outbox import Outbox
from tests.builders import FLOW

NOW = datetime.now(UTC).replace(microsecond=0)
REPLIED_AT = NOW + timedelta(seconds=5)


async def seed(
    pool: asyncpg.Pool[Any], organization: UUID | None = None
) -> tuple[UUID, UUID, list[UUID]]:
    """A contact in three campaigns of one account, a message sent in the first (random id 1):
    (account, contact, executions by campaign)."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('o@example.com') RETURNING id")
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (organization_id, owner_user_id, display_name,"
        " session_kind, health_status) VALUES ($1, $2, 'sim', 'simulated', 'active') RETURNING id",
        organization,
        user,
    )
    contact = await pool.fetchval(
        "INSERT INTO contacts (organization_id, owner_user_id, telegram_username, phone,"
        " telegram_user_id) VALUES ($1, $2, 'Opting_Out', '+49 151 7654321', 99) RETURNING id",
        organization,
        user,
    )
    executions = []
    for name, status in (("first", "waiting"), ("second", "pending"), ("third", "paused")):
        campaign = await pool.fetchval(
            "INSERT INTO campaigns (organization_id, created_by, name, status,"
            " telegram_account_id, flow) VALUES ($1, $2, $3, 'active', $4, $5) RETURNING id",
            organization,
            user,
            name,
            account,
            FLOW,
        )
        executions.append(
            await pool.fetchval(
                "INSERT INTO executions (campaign_id, contact_id, status, current_node_id,"
                " started_at, next_execution_at) VALUES ($1, $2, $3, 'n1', $4, $4) RETURNING id",
                campaign,
                contact,
                status,
                NOW,
            )
        )
    first = await pool.fetchval("SELECT campaign_id FROM executions WHERE id = $1", executions[0])
    await pool.execute(
        "INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id,"
        " node_id, direction, body, status, random_id, telegram_message_id, sent_at)"
        " VALUES ($1, $2, $3, $4, 'n1', 'outgoing', 'hi', 'sent', 1, 10, $5)",
        first,
        executions[0],
        contact,
        account,
        NOW,
    )
    # A send of the second campaign claimed but not answered yet: it goes with the opt-out.
    second = await pool.fetchval("SELECT campaign_id FROM executions WHERE id = $1", executions[1])
    await pool.execute(
        "INSERT INTO messages (campaign_id, execution_id, contact_id, telegram_account_id,"
        " node_id, direction, body, status, random_id) VALUES ($1, $2, $3, $4, 'n1', 'outgoing',"
        " 'hello', 'queued', 2)",
        second,
        executions[1],
        contact,
        account,
    )
    return account, contact, executions


async def reply(pool: asyncpg.Pool[Any], account: UUID, text: str) -> tuple[Outbox, Detected]:
    outbox, detected = Outbox(), Detected()
    async with pool.acquire() as connection, connection.transaction():
        update = Incoming("reply", account, 1, REPLIED_AT, text)
        await apply(connection, outbox, update, NOW, detected)
    return outbox, detected


async def test_an_opt_out_reply_lists_the_person_and_ends_every_execution_of_theirs(
    pool: asyncpg.Pool[Any],
) -> None:
    account, contact, executions = await seed(pool)

    outbox, detected = await reply(pool, account, "Por favor, dame de BÁJA")

    assert detected.opt_outs == 1
    rows = await pool.fetch(
        "SELECT id, status, error_message, next_execution_at FROM executions ORDER BY id"
    )
    assert {r["id"]: (r["status"], r["error_message"]) for r in rows} == {
        executions[0]: ("completed", "opted_out"),
        executions[1]: ("cancelled", "do_not_contact"),
        executions[2]: ("cancelled", "do_not_contact"),
    }
    assert all(r["next_execution_at"] is None for r in rows)
    listed = await pool.fetch(
        "SELECT kind, value, reason, source, contact_id FROM do_not_contact ORDER BY kind"
    )
    assert [tuple(r) for r in listed] == [
        ("contact", str(contact), "request", "reply", contact),
        ("phone", "491517654321", "request", "reply", contact),
        ("telegram_user_id", "99", "request", "reply", contact),
        ("username", "opting_out", "request", "reply", contact),
    ]
    # The reply is recorded; the queued send of the second campaign went.
    statuses = await pool.fetch("SELECT direction, status FROM messages ORDER BY direction")
    assert [tuple(r) for r in statuses] == [("incoming", "received"), ("outgoing", "delivered")]
    logged = await pool.fetch("SELECT message FROM execution_logs WHERE event = 'opted_out'")
    assert sorted(r["message"] for r in logged) == ["do_not_contact", "do_not_contact", "opted_out"]
    types = [record.headers["message-type"] for record in outbox.records]
    assert types.count("do_not_contact.added") == 4
    assert types.count("execution.progressed") == 3
    # The recount counts the opt-out in the campaign replied to, and only there.
    figures = await pool.fetch(
        "SELECT c.name, s.contacts_opted_out, s.contacts_responded"
        " FROM campaigns c, get_campaign_statistics(c.id) s ORDER BY c.name"
    )
    assert [tuple(r) for r in figures] == [("first", 1, 1), ("second", 0, 0), ("third", 0, 0)]
    rate = await pool.fetchval(
        "SELECT opt_out_rate FROM campaigns c, get_campaign_statistics(c.id) s"
        " WHERE c.name = 'first'"
    )
    assert rate == 100  # one opt-out over one delivered message


async def test_a_reply_that_does_not_opt_out_steers_as_before(pool: asyncpg.Pool[Any]) -> None:
    account, _, executions = await seed(pool)

    _, detected = await reply(pool, account, "Stopwatch? tell me more")

    assert detected.opt_outs == 0
    assert await pool.fetchval("SELECT count(*) FROM do_not_contact") == 0
    others = await pool.fetch(
        "SELECT status FROM executions WHERE id <> $1 ORDER BY id", executions[0]
    )
    assert sorted(r["status"] for r in others) == ["paused", "pending"]


async def test_an_organizations_own_phrases_replace_the_defaults(pool: asyncpg.Pool[Any]) -> None:
    organization = await pool.fetchval(
        "INSERT INTO organizations (name, settings) VALUES ('Acme', $1) RETURNING id",
        {"opt_out_phrases": ["leave me alone"]},
    )
    account, _, _ = await seed(pool, organization)

    _, kept = await reply(pool, account, "stop")
    assert kept.opt_outs == 0
    assert await pool.fetchval("SELECT count(*) FROM do_not_contact") == 0

    _, left = await reply(pool, account, "Leave me ALONE!")
    assert left.opt_outs == 1
    entries = await pool.fetch("SELECT organization_id, user_id FROM do_not_contact")
    assert {(r["organization_id"], r["user_id"]) for r in entries} == {(organization, None)}
