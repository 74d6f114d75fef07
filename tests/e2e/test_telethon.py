"""A campaign sent from a Telethon account, through the real services, to a local MTProto
server (dripline/fake_telegram): an unmodified TelegramClient in the sender process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dripline.fake_telegram import FakeTelegram
from tests.builders import BRANCHING_FLOW, FAST, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

SENDER, ADA, BOB = 1000, 2001, 2002


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(SENDER)
    server.add_user(ADA, username="ada_real")
    server.add_user(BOB, username="bob_real")
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


async def test_a_campaign_runs_through_telethon_with_a_reply_steering_it(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={
                "display_name": "Real",
                "session_kind": "telethon",
                "session_string": telegram.session_string(SENDER),
                "pacing": FAST,
                "warm": True,
            },
        ),
        201,
    )
    assert account["health_status"] == "disconnected"

    async def checked() -> Any:
        found = ok(await api.get(f"/telegram-accounts/{account['id']}"))
        return found if found["health_status"] == "active" else None

    await eventually(checked)  # the sender opened the session and probed it
    created = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Through Telethon",
                "telegram_account_id": account["id"],
                "flow": BRANCHING_FLOW,
                "settings": {"response_handling": {"stop_on_reply": False}},
            },
        ),
        201,
    )
    ada = await contact(api, "ada_real", first_name="Ada")
    bob = await contact(api, "bob_real", first_name="Bob")
    await add_contacts(api, created["id"], [ada["id"], bob["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def asked_ada() -> Any:
        return next(
            (m for m in telegram.sent if m.peer_user_id == ADA and m.text.startswith("Any")), None
        )

    question = await eventually(asked_ada, timeout_s=30)
    await telegram.push_reply(SENDER, ADA, "Love it")
    await telegram.push_read(SENDER, BOB, 10**6)

    async def completed() -> Any:
        campaign = ok(await api.get(f"/campaign-flows/{created['id']}"))
        return campaign if campaign["status"] == "completed" else None

    await eventually(completed, timeout_s=60)
    by_peer = sorted((m.peer_user_id, m.text) for m in telegram.sent)
    assert by_peer == [
        (ADA, "Any thoughts, Ada?"),
        (ADA, "Hi Ada!"),
        (ADA, "Thanks!"),
        (BOB, "Any thoughts, Bob?"),
        (BOB, "Bye for now"),
        (BOB, "Hi Bob!"),
    ]
    ours = await pool.fetch(
        "SELECT telegram_message_id, random_id FROM messages"
        " WHERE campaign_id = $1 AND direction = 'outgoing' AND status <> 'failed'",
        created["id"],
    )
    # One record per message Telegram accepted, with Telegram's own id and our random_id.
    assert sorted((r["telegram_message_id"], r["random_id"]) for r in ours) == sorted(
        (m.message_id, m.random_id) for m in telegram.sent
    )
    reply = await pool.fetchrow(
        "SELECT m.body FROM messages m WHERE m.campaign_id = $1 AND m.direction = 'incoming'",
        created["id"],
    )
    assert reply is not None
    assert reply["body"] == "Love it"
    asked = await pool.fetchrow(
        "SELECT status FROM messages WHERE telegram_message_id = $1 AND campaign_id = $2",
        question.message_id,
        created["id"],
    )
    assert asked is not None
    assert asked["status"] == "delivered"  # the reply confirmed it
    bob_read = await pool.fetchval(
        "SELECT count(*) FROM messages m JOIN contacts c ON c.id = m.contact_id"
        " WHERE m.campaign_id = $1 AND c.telegram_username = 'bob_real' AND m.status = 'read'",
        created["id"],
    )
    assert bob_read >= 2  # everything up to the read was read
