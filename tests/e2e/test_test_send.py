"""A test send through the live stack to a Telethon account on the local MTProto server: the
step (spintax, a fallback, a photo) rendered for a contact arrives in the account's own Saved
Messages with its caption, the photo uploaded once for two tests; nothing goes to the contact
until the campaign runs, and then the contact gets what the test showed, the photo not
uploaded again."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from dripline.fake_telegram import FakeTelegram
from tests.builders import END, FAST, add_contacts, contact, edge, flow, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

SENDER, ADA = 1000, 2001
PHOTO = b"\xff\xd8\xff\xe0" + bytes(200_000)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(SENDER)
    server.add_user(ADA, username="ada_real")
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


async def test_a_test_send_arrives_in_saved_messages_with_its_photo(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Real", "session_kind": "telethon",
                  "session_string": telegram.session_string(SENDER), "pacing": FAST,
                  "warm": True},
        ),
        201,
    )  # fmt: skip

    async def active() -> Any:
        found = ok(await api.get(f"/telegram-accounts/{account['id']}"))
        return found if found["health_status"] == "active" else None

    await eventually(active)
    photo = ok(
        await api.post("/attachments", content=PHOTO, headers={"Content-Type": "image/jpeg"},
                       params={"filename": "offer.jpg"}),
        201,
    )  # fmt: skip
    send = {"id": "hello", "type": "send_message", "attachment_id": photo["id"],
            "text": "{Hi|Hello} {first_name|there}, here is our offer"}  # fmt: skip
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Preview", "telegram_account_id": account["id"],
                  "flow": flow([send, END], [edge("hello", "end")])},
        ),
        201,
    )  # fmt: skip
    ada = await contact(api, "ada_real", first_name=None)
    path = f"/campaign-flows/{created['id']}/test-send"
    body = {"node_id": "hello", "contact_id": ada["id"]}

    async def logged() -> list[Any]:
        page = ok(await api.get(f"/campaign-flows/{created['id']}/logs",
                                params={"event": "test_sent"}))  # fmt: skip
        return list(page["items"])

    async def test_send(count: int) -> str:
        """The test's text: the answer's, or (answered 202 on a slow machine) the log's."""
        response = await api.post(path, json=body)
        if response.status_code == 202:
            entries = await eventually(lambda: _at_least(logged, count))
            return str(entries[0]["message"])
        answer = ok(response)
        assert answer["attachment_id"] == photo["id"]
        return str(answer["text"])

    first = await test_send(1)
    assert first in ("Hi there, here is our offer", "Hello there, here is our offer")
    uploads = sum(1 for c in telegram.calls if c.method == "upload.SaveFilePart")
    assert uploads >= 1
    second = await test_send(2)
    assert second == first  # the same spintax for the same contact and step
    saved = telegram.saved_messages(SENDER)
    assert [m.text for m in saved] == [first, first]
    assert all(m.media is not None and m.media.data == PHOTO for m in saved)
    # The second test named the photo the first one uploaded.
    assert sum(1 for c in telegram.calls if c.method == "upload.SaveFilePart") == uploads
    assert [m for m in telegram.sent if m.peer_user_id == ADA] == []
    assert await pool.fetchval("SELECT count(*) FROM executions") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0
    assert [entry["message"] for entry in await logged()] == [first, first]
    # Launched, the campaign sends Ada what the test showed, naming the same upload.
    await add_contacts(api, created["id"], [ada["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def to_ada() -> Any:
        return next((m for m in telegram.sent if m.peer_user_id == ADA), None)

    real = await eventually(to_ada, timeout_s=30)
    assert real.text == first
    assert real.media is not None
    assert real.media.data == PHOTO
    assert sum(1 for c in telegram.calls if c.method == "upload.SaveFilePart") == uploads


async def _at_least(entries: Callable[[], Awaitable[list[Any]]], count: int) -> list[Any] | None:
    found = await entries()
    return found if len(found) >= count else None
