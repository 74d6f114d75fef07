"""The statistics recover from events that never reached the stats service (a broker that lost
what it had acknowledged) and from stored figures that drifted otherwise: the stats service's
own reconciliation, at start-up and periodically, and `dripline stats verify --repair`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any
from uuid import UUID

import asyncpg
import pytest
from prometheus_client import REGISTRY

from dripline.processes import settings_env
from services.api.accounts import create_user_with_key
from services.stats.app import create_service
from services.stats.verify import drift
from shared.domain.clock import SystemClock
from shared.messaging.contracts import MessageDelivered, MessageType
from shared.messaging.envelope import new_envelope
from shared.messaging.outbox import record_for
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.builders import FLOW
from tests.support import REPO, eventually


async def a_campaign(pool: asyncpg.Pool[Any], user: UUID, name: str, sends: int) -> UUID:
    """An active campaign whose executions each sent one message, with its stored figures
    refreshed from the source tables (as the stats service leaves them)."""
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, flow, launched_at)"
        " VALUES ($1, $2, 'active', $3, now()) RETURNING id",
        user,
        name,
        FLOW,
    )
    for i in range(sends):
        contact = await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
            " VALUES ($1, $2, 'Cy') RETURNING id",
            user,
            f"{name}{i}",
        )
        execution = await pool.fetchval(
            "INSERT INTO executions (campaign_id, contact_id, status, started_at)"
            " VALUES ($1, $2, 'waiting', now()) RETURNING id",
            campaign,
            contact,
        )
        await pool.execute(
            "INSERT INTO messages (campaign_id, execution_id, contact_id, direction, body, status,"
            " sent_at) VALUES ($1, $2, $3, 'outgoing', 'Hi', 'sent', now())",
            campaign,
            execution,
            contact,
        )
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute("SELECT statistics_lock($1)", [campaign])
        await connection.execute(
            "SELECT refresh_statistics('{}', $1, $1, ARRAY[now()], now())", [campaign]
        )
    return campaign


async def deliveries_the_broker_lost(pool: asyncpg.Pool[Any], campaign: UUID) -> None:
    """Telegram confirmed every message: the sender recorded it and wrote a message.delivered
    event per message, which the relay published and marked sent; the broker then lost them,
    so the stats service never hears of them."""
    rows = await pool.fetch(
        "UPDATE messages SET status = 'delivered', delivered_at = now() WHERE campaign_id = $1"
        " RETURNING id, execution_id, contact_id",
        campaign,
    )
    for row in rows:
        event = MessageDelivered(
            campaign_id=campaign,
            execution_id=row["execution_id"],
            message_ids=[row["id"]],
            via="read",
        )
        envelope = new_envelope(
            type=MessageType.MESSAGE_DELIVERED,
            payload=event,
            occurred_at=SystemClock().now(),
            actor=None,
        )
        record = record_for(Topic.EXECUTION_EVENTS, str(campaign), envelope)
        await pool.execute(
            "INSERT INTO outbox (topic, key, value, headers, message_id, sent_at)"
            " VALUES ($1, $2, $3, $4, $5, now())",
            record.topic,
            str(campaign).encode(),
            record.value,
            record.headers,
            envelope.message_id,
        )


def drift_count(figure: str) -> float:
    return REGISTRY.get_sample_value("dripline_stats_drift_total", {"figure": figure}) or 0.0


async def stored(pool: asyncpg.Pool[Any], campaign: UUID, figure: str) -> Any:
    return await pool.fetchval(
        f"SELECT {figure} FROM campaign_stats WHERE campaign_id = $1", campaign
    )


@pytest.mark.settings(stats_reconcile_interval_s=1, stats_reconcile_settle_s=0.3)
async def test_the_stats_service_repairs_drift_at_start_up_and_periodically(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        user = (await create_user_with_key(connection, "drift@example.com")).user_id
    corrupted = await a_campaign(pool, user, "corrupted", 3)
    lost = await a_campaign(pool, user, "lost", 4)
    untouched = await a_campaign(pool, user, "untouched", 2)
    await pool.execute(
        "UPDATE campaign_stats SET messages_sent = 40 WHERE campaign_id = $1", corrupted
    )
    sent_before = drift_count("messages_sent")
    delivered_before = drift_count("messages_delivered")

    service = create_service(settings)
    async with service.running():
        # Start-up: the first reconciliation (none recorded yet) compares every campaign.
        async def repaired_at_start() -> bool:
            return bool(await stored(pool, corrupted, "messages_sent") == 3)

        await eventually(repaired_at_start, timeout_s=20)
        assert drift_count("messages_sent") == sent_before + 1

        await deliveries_the_broker_lost(pool, lost)

        async def repaired_later() -> bool:
            return bool(await stored(pool, lost, "messages_delivered") == 4)

        await eventually(repaired_later, timeout_s=20)
        assert drift_count("messages_delivered") == delivered_before + 1

    async with pool.acquire() as connection:
        assert await drift(connection) == []
    # A campaign no record named since the start-up reconciliation was left alone there.
    refreshes = await pool.fetchval(
        "SELECT refreshes FROM campaign_stats WHERE campaign_id = $1", untouched
    )
    assert refreshes == 1
    assert await pool.fetchval("SELECT outbox_id FROM stats_reconciliation") == (
        await pool.fetchval("SELECT max(id) FROM outbox")
    )


async def test_verify_repair_fixes_drift_and_says_what_it_fixed(
    settings: Settings, pool: asyncpg.Pool[Any]
) -> None:
    async with pool.acquire() as connection:
        user = (await create_user_with_key(connection, "repair@example.com")).user_id
    campaign = await a_campaign(pool, user, "repair", 3)
    await deliveries_the_broker_lost(pool, campaign)
    await pool.execute(
        "UPDATE campaign_stats SET contacts_started = 7 WHERE campaign_id = $1", campaign
    )
    env = {**os.environ, **settings_env(settings)}
    verify = [sys.executable, "-m", "dripline", "stats", "verify", "--settle", "0"]

    found = await _run(verify, env)
    assert found.returncode == 1, found.stdout + found.stderr

    repaired = await _run([*verify, "--repair"], env)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"repaired campaign {campaign}: contacts_started 7 → 3" in repaired.stdout
    assert f"repaired campaign {campaign}: messages_delivered 0 → 3" in repaired.stdout
    assert "1 campaign(s) repaired" in repaired.stdout
    async with pool.acquire() as connection:
        assert await drift(connection) == []

    clean = await _run(verify, env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 campaign(s) differ" in clean.stdout


async def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60, cwd=REPO
    )
