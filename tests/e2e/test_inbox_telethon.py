"""The unified inbox through the Telethon adapter and a local MTProto server
(dripline/fake_telegram; issue 15, the third "Done when" line): a reply the fake server pushes
shows as a conversation, an answer sent through the API arrives at the fake server from the
account, and marking the conversation read sends Telegram's read receipt (messages.ReadHistory).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from dripline.fake_telegram import FakeTelegram, ReadReceipt
from tests.builders import FLOW, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

SENDER, ADA = 1000, 2001


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(SENDER)
    server.add_user(ADA, username="ada_inbox")
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


async def test_the_inbox_shows_the_fake_servers_reply_and_the_answer_arrives_there(
    stack: Stack, telegram: FakeTelegram
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={
                "display_name": "Real",
                "session_kind": "telethon",
                "session_string": telegram.session_string(SENDER),
                "pacing": {"min_gap_s": 0, "jitter_s": 0},
                "warm": True,
            },
        ),
        201,
    )

    async def active() -> Any:
        found = ok(await api.get(f"/telegram-accounts/{account['id']}"))
        return found if found["health_status"] == "active" else None

    await eventually(active, timeout_s=60)
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Inbox", "telegram_account_id": account["id"], "flow": FLOW},
        ),
        201,
    )
    ada = await contact(api, "ada_inbox", first_name="Ada")
    await add_contacts(api, created["id"], [ada["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def greeted() -> Any:
        return next((m for m in telegram.sent if m.peer_user_id == ADA), None)

    await eventually(greeted, timeout_s=60)
    await telegram.push_reply(SENDER, ADA, "Who is this?")

    async def in_inbox() -> Any:
        page = ok(await api.get("/conversations", params={"unread": "true"}))
        return page["items"][0] if page["items"] else None

    conversation = await eventually(in_inbox, timeout_s=60)
    assert (conversation["contact_id"], conversation["telegram_account_id"]) == (
        ada["id"],
        account["id"],
    )
    assert (conversation["last_direction"], conversation["last_body"]) == (
        "incoming",
        "Who is this?",
    )
    assert conversation["unread_count"] == 1
    cid = conversation["id"]

    read = ok(await api.post(f"/conversations/{cid}/read"))
    assert read["unread_count"] == 0

    async def receipt() -> Any:
        return telegram.read

    assert await eventually(receipt, timeout_s=60) == [ReadReceipt(SENDER, ADA, 0)]

    ok(await api.post(f"/conversations/{cid}/messages", json={"text": "Ada, it is Dripline"}), 202)

    async def arrived() -> Any:
        return next((m for m in telegram.sent if m.text == "Ada, it is Dripline"), None)

    answer = await eventually(arrived, timeout_s=60)
    assert (answer.account_id, answer.peer_user_id) == (SENDER, ADA)

    async def recorded() -> Any:
        items = ok(await api.get(f"/conversations/{cid}/messages"))["items"]
        return items if items[-1]["status"] == "sent" else None

    history = await eventually(recorded, timeout_s=30)
    assert [(m["direction"], m["body"]) for m in history] == [
        ("outgoing", "Hi Ada!"),
        ("incoming", "Who is this?"),
        ("outgoing", "Ada, it is Dripline"),
    ]
    # Recorded with Telegram's own id for it.
    assert history[-1]["telegram_message_id"] == answer.message_id
    shown = ok(await api.get(f"/conversations/{cid}"))
    assert shown["taken_over"] is True
    assert (shown["last_direction"], shown["last_body"]) == ("outgoing", "Ada, it is Dripline")
    assert [m.text for m in telegram.sent if m.peer_user_id == ADA] == [
        "Hi Ada!",
        "Ada, it is Dripline",
    ]
