"""Active hours in the recipient's own zone (issue 16, item 3), through the sender's real
handler, a real database and the simulator: with `active_hours.in_recipient_zone` one campaign
window opens at different instants for contacts in different zones; a contact with no zone of
its own (given or implied by its phone) keeps the campaign's; the setting off, everyone does."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.topics import Topic
from tests.services.builders import FREE_PACE, ONE_SEND, create_service_for, due_record

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = NOW + timedelta(seconds=60)
# Tokyo (UTC+9, no DST) and Cape Verde (UTC-1, no DST) are 10 hours apart; the campaign is in
# UTC. The window is the two hours from the hour it is in Tokyo now: open in Tokyo, shut in
# Cape Verde (it is 10 hours earlier there) and in UTC (9 hours earlier).
TOKYO_HOUR = NOW.astimezone(ZoneInfo("Asia/Tokyo")).replace(minute=0, second=0)
OPENED_IN_TOKYO = TOKYO_HOUR.astimezone(UTC)
WINDOW = {
    "start": TOKYO_HOUR.time().isoformat(),
    "end": time((TOKYO_HOUR.hour + 2) % 24).isoformat(),
}


def consumer_at(pool: asyncpg.Pool[Any], now: datetime) -> BatchConsumer:
    return BatchConsumer(
        name="sender",
        topic=Topic.EXECUTIONS_DUE,
        handlers=create_service_for(pool).handlers[Topic.EXECUTIONS_DUE],
        pool=pool,
        clock=FixedClock(now),
    )


async def seed(
    pool: asyncpg.Pool[Any], in_recipient_zone: bool
) -> tuple[UUID, UUID, dict[str, UUID]]:
    """A UTC campaign with the window, and three due executions: a contact whose zone its
    phone implies (Tokyo), one given Cape Verde's, one with neither. (account, campaign,
    execution by name)."""
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('z@example.com') RETURNING id")
    account: UUID = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        FREE_PACE,
    )
    settings = {"active_hours": {**WINDOW, "in_recipient_zone": in_recipient_zone}}
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow, settings,"
        " timezone) VALUES ($1, 'c', 'active', $2, $3, $4, 'UTC') RETURNING id",
        user,
        account,
        ONE_SEND,
        settings,
    )
    contacts = {
        "tokyo": ("+81 3 1234 5678", None),
        "praia": (None, "Atlantic/Cape_Verde"),
        "nowhere": (None, None),
    }
    executions = {}
    for name, (phone, zone) in contacts.items():
        contact = await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username, phone, time_zone)"
            " VALUES ($1, $2, $3, $4) RETURNING id",
            user,
            name,
            phone,
            zone,
        )
        executions[name] = await pool.fetchval(
            "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at,"
            " lease_until) VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
            campaign,
            contact,
            NOW,
            LEASE,
        )
    return account, campaign, executions


async def states(pool: asyncpg.Pool[Any], executions: dict[str, UUID]) -> dict[str, Any]:
    rows = {
        r["id"]: r for r in await pool.fetch("SELECT id, status, next_execution_at FROM executions")
    }
    return {
        name: (rows[e]["status"], rows[e]["next_execution_at"]) for name, e in executions.items()
    }


async def sent_to(pool: asyncpg.Pool[Any]) -> list[str]:
    rows = await pool.fetch(
        "SELECT ct.telegram_username FROM messages m JOIN contacts ct ON ct.id = m.contact_id"
        " WHERE m.status = 'sent' ORDER BY 1"
    )
    return [r["telegram_username"] for r in rows]


async def test_the_window_opens_in_each_recipients_zone(pool: asyncpg.Pool[Any]) -> None:
    account, campaign, executions = await seed(pool, in_recipient_zone=True)

    await consumer_at(pool, NOW).process(
        [due_record(e, campaign, account, LEASE) for e in executions.values()]
    )

    # Tokyo's window is open: sent now. Cape Verde's opens when its clock reads the start,
    # 10 hours after Tokyo's did; the contact without a zone waits for the campaign's (UTC).
    assert await sent_to(pool) == ["tokyo"]
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 1
    found = await states(pool, executions)
    assert found["tokyo"][0] == "completed"
    assert found["praia"] == ("pending", OPENED_IN_TOKYO + timedelta(hours=10))
    assert found["nowhere"] == ("pending", OPENED_IN_TOKYO + timedelta(hours=9))

    # When Cape Verde's window opens, its deferred send goes (dispatch claims it again).
    opens = OPENED_IN_TOKYO + timedelta(hours=10)
    lease = opens + timedelta(seconds=60)
    await pool.execute(
        "UPDATE executions SET lease_until = $2 WHERE id = $1", executions["praia"], lease
    )
    await consumer_at(pool, opens).process(
        [due_record(executions["praia"], campaign, account, lease)]
    )
    assert await sent_to(pool) == ["praia", "tokyo"]
    assert (await states(pool, executions))["praia"][0] == "completed"


async def test_without_the_setting_every_contact_keeps_the_campaigns_zone(
    pool: asyncpg.Pool[Any],
) -> None:
    account, campaign, executions = await seed(pool, in_recipient_zone=False)

    await consumer_at(pool, NOW).process(
        [due_record(e, campaign, account, LEASE) for e in executions.values()]
    )

    assert await sent_to(pool) == []
    opens_in_utc = OPENED_IN_TOKYO + timedelta(hours=9)
    assert await states(pool, executions) == {
        name: ("pending", opens_in_utc) for name in executions
    }
