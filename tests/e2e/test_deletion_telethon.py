"""Deletion honoured through the real services with the Telethon adapter (issue 15, item 1,
the first "Done when" line): a contact and an account deleted while their sends are pending
(paced, due in a moment) get nothing more on a local MTProto server (dripline/fake_telegram), and
the statistics still equal the recount (the `stack` fixture checks). tests/e2e/test_deletion.py
proves the same with the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dripline.fake_telegram import FakeTelegram
from tests.builders import FLOW, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

GAP_S = 3  # between two sends of one account: the sends after the first wait their turn
PACED = {"min_gap_s": GAP_S, "jitter_s": 0}
KEPT, HELD = 1000, 1001  # the two sending accounts
PEOPLE = {"del_one": 2001, "del_two": 2002, "del_three": 2003, "acc_one": 2011, "acc_two": 2012}
USERNAMES = {user_id: username for username, user_id in PEOPLE.items()}


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(KEPT)
    server.add_account(HELD)
    for username, user_id in PEOPLE.items():
        server.add_user(user_id, username=username)
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


async def launched(
    stack: Stack, telegram: FakeTelegram, name: str, sender: int, usernames: list[str]
) -> tuple[str, str]:
    """A Telethon account (active) and a running campaign of it to these contacts:
    (account, campaign)."""
    api = stack.api
    body = {
        "display_name": name,
        "session_kind": "telethon",
        "session_string": telegram.session_string(sender),
        "pacing": PACED,
        "warm": True,
    }
    account = ok(await api.post("/telegram-accounts", json=body), 201)

    async def active() -> Any:
        found = ok(await api.get(f"/telegram-accounts/{account['id']}"))
        return found if found["health_status"] == "active" else None

    await eventually(active, timeout_s=60)  # the sender opened the session and probed it
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": name, "telegram_account_id": account["id"], "flow": FLOW},
        ),
        201,
    )
    people = [(await contact(api, username))["id"] for username in usernames]
    await add_contacts(api, created["id"], people)
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))
    return account["id"], created["id"]


def received(telegram: FakeTelegram, sender: int) -> set[str]:
    """Whom the fake Telegram server accepted a message for from this account."""
    return {USERNAMES[m.peer_user_id] for m in telegram.sent if m.account_id == sender}


async def contact_id(pool: asyncpg.Pool[Any], username: str) -> str:
    return str(
        await pool.fetchval("SELECT id FROM contacts WHERE telegram_username = $1", username)
    )


async def test_nothing_reaches_the_fake_telegram_after_a_contact_or_an_account_is_deleted(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    _, _ = await launched(stack, telegram, "Kept", KEPT, ["del_one", "del_two", "del_three"])
    held_account, held_campaign = await launched(
        stack, telegram, "Held", HELD, ["acc_one", "acc_two"]
    )

    async def first_sends() -> Any:
        kept, held = received(telegram, KEPT), received(telegram, HELD)
        return (kept, held) if len(kept) == 1 and len(held) == 1 else None

    kept, held = await eventually(first_sends, timeout_s=60)
    # The others wait for their account's next turns, GAP_S apart: delete one of them, and the
    # second campaign's account.
    doomed, survivor = sorted({"del_one", "del_two", "del_three"} - kept)
    doomed_id = await contact_id(pool, doomed)
    assert (await api.delete(f"/contacts/{doomed_id}")).status_code == 204
    assert (await api.delete(f"/telegram-accounts/{held_account}")).status_code == 204
    deleted_at = len(telegram.sent)

    async def survivor_sent() -> bool:
        return survivor in received(telegram, KEPT)

    await eventually(survivor_sent, timeout_s=60)
    await asyncio.sleep(GAP_S + 2)  # past every turn the deleted ones could have had

    assert received(telegram, KEPT) == kept | {survivor}
    assert received(telegram, HELD) == held
    # After the deletion, the fake accepted at most the survivor's message.
    after = {(m.account_id, USERNAMES[m.peer_user_id]) for m in telegram.sent[deleted_at:]}
    assert after <= {(KEPT, survivor)}
    row = await pool.fetchrow(
        "SELECT status, error_message FROM executions WHERE contact_id = $1", doomed_id
    )
    assert row is not None
    assert (row["status"], row["error_message"]) == ("cancelled", "contact_deleted")
    (waiting,) = {"acc_one", "acc_two"} - held
    row = await pool.fetchrow(
        "SELECT status, error_message FROM executions WHERE contact_id = $1",
        await contact_id(pool, waiting),
    )
    assert row is not None
    assert row["status"] in ("pending", "waiting")
    assert row["error_message"] == "account_deleted"
    shown = ok(await api.get(f"/campaign-flows/{held_campaign}"))
    assert shown["sending_blocked"] == "account_deleted"
