"""A sender dies; another sender picks its Telethon accounts up within a minute (issue 14
item 7; docs/accounts.md, "Several senders").

Each session is held under a PostgreSQL advisory lock on the sender's own connection, so a
killed sender releases its locks when its connection ends; every sender's `adopt_sessions` job
connects the sending accounts that nobody holds. The accounts stay `active` throughout: the
second sender's checks of sessions held by the first leave them alone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dripline.fake_telegram import FakeTelegram
from dripline.infra import free_port
from dripline.processes import ServiceProcess
from tests.builders import FAST, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

ACCOUNTS = (1001, 1002, 1003, 1004)

# Who holds each account's session lock (hold_session in services/sender/telethon.sql).
HOLDERS = """
SELECT a.id, l.pid
FROM telegram_accounts a
LEFT JOIN pg_locks l
  ON l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
 AND ((l.classid::int8 << 32) | l.objid::int8)
     = hashtextextended('dripline.telethon:' || a.id::text, 0)
WHERE a.id = ANY($1::uuid[])
"""


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    for user_id in ACCOUNTS:
        server.add_account(user_id)
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


async def transitions(pool: asyncpg.Pool[Any]) -> list[str]:
    """The statuses entered other than active (their first check makes them active)."""
    rows = await pool.fetch(
        "SELECT convert_from(value, 'UTF8')::jsonb->'payload'->>'status' AS status FROM outbox"
        " WHERE headers->>'message-type' = 'account.health_changed' ORDER BY id"
    )
    return [row["status"] for row in rows if row["status"] != "active"]


async def holders(pool: asyncpg.Pool[Any], ids: list[Any]) -> dict[Any, int | None]:
    return {row["id"]: row["pid"] for row in await pool.fetch(HOLDERS, ids)}


async def register(stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram) -> list[Any]:
    """The accounts, once the only sender (the stack's) has opened and probed them all."""
    ids = []
    for user_id in ACCOUNTS:
        account = ok(
            await stack.api.post(
                "/telegram-accounts",
                json={
                    "display_name": f"Account {user_id}",
                    "session_kind": "telethon",
                    "session_string": telegram.session_string(user_id),
                    "pacing": FAST,
                    "warm": True,
                },
            ),
            201,
        )
        ids.append(account["id"])

    async def all_active() -> bool:
        return await active(pool, ids)

    await eventually(all_active, timeout_s=60)
    return ids


async def active(pool: asyncpg.Pool[Any], ids: list[Any]) -> bool:
    rows = await pool.fetch(
        "SELECT health_status FROM telegram_accounts WHERE id = ANY($1::uuid[])", ids
    )
    return all(row["health_status"] == "active" for row in rows)


def another_sender(stack: Stack) -> ServiceProcess:
    second = ServiceProcess(
        "sender", stack.settings.model_copy(update={"sender_port": free_port()})
    )
    second.start()
    return second


async def test_a_dead_senders_accounts_are_picked_up_by_another_within_a_minute(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    # Checks come every 5 minutes (the default): the pickup is the adopt_sessions job's.
    ids = await register(stack, pool, telegram)
    first = await holders(pool, ids)
    assert None not in first.values(), first
    assert len(set(first.values())) == 1, first  # one sender (one lock connection) holds them
    [dead_backend] = set(first.values())
    second = another_sender(stack)
    try:
        await second.wait_healthy()
        connected = len(telegram.connected)
        stack["sender"].kill()  # SIGKILL: its connections end, and with them its locks
        died = time.monotonic()

        async def picked_up() -> dict[Any, int | None] | None:
            now = await holders(pool, ids)
            alive = all(pid is not None and pid != dead_backend for pid in now.values())
            return now if alive else None

        taken = await eventually(picked_up, timeout_s=60, interval_s=0.5)
        assert time.monotonic() - died < 60
        assert len(set(taken.values())) == 1  # the one sender left holds them all
        # Each account connected again to Telegram (the fake), from the second sender.
        again = {c.account_id for c in telegram.connected[connected:]}
        assert again >= set(ACCOUNTS)
        assert await active(pool, ids)
        assert await transitions(pool) == []
        assert "adopted" in second.output()

        stack["sender"].start()  # back for the stack's clean shutdown
        await stack["sender"].wait_healthy()
    finally:
        code = second.stop()
    assert code == 0, second.output()[-3000:]


@pytest.mark.settings(health_check_interval_s=5.0)
async def test_a_sender_leaves_alone_the_accounts_another_sender_holds(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    ids = await register(stack, pool, telegram)
    first = await holders(pool, ids)
    second = another_sender(stack)
    try:
        await second.wait_healthy()
        connected = len(telegram.connected)
        started = time.monotonic()

        async def checked_by_both() -> bool:
            # Checks every 5 s, claimed by either sender: the second claims some.
            return time.monotonic() - started > 15

        await eventually(checked_by_both, timeout_s=30, interval_s=1)
        assert await holders(pool, ids) == first  # nobody took a session that is held
        assert await transitions(pool) == []  # nor called the accounts disconnected for it
        assert await active(pool, ids)
        assert len(telegram.connected) == connected
    finally:
        code = second.stop()
    assert code == 0, second.output()[-3000:]
