"""Deletion honoured through the real services (issue 15, item 1): a contact and an account
deleted while their sends are pending (paced, due in a moment) get nothing more on the
simulated Telegram, and the statistics still equal the recount (the `stack` fixture checks)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.builders import FLOW, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

GAP_S = 3  # between two sends of one account: the sends after the first wait their turn
PACED = {"min_gap_s": GAP_S, "jitter_s": 0}


async def launched(stack: Stack, name: str, usernames: list[str]) -> tuple[str, str]:
    """An account and a running campaign of it to these contacts: (account, campaign)."""
    api = stack.api
    body = {"display_name": name, "pacing": PACED}
    account = ok(await api.post("/telegram-accounts", json=body), 201)
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


async def received(pool: asyncpg.Pool[Any], account_id: str) -> set[str]:
    """Whom the simulated Telegram received a message for from this account (by the peer it
    was addressed to, so a send whose record was dropped would still show)."""
    rows = await pool.fetch(
        "SELECT DISTINCT peer FROM simulator_messages WHERE account_id = $1", account_id
    )
    return {r["peer"] for r in rows}


async def contact_id(pool: asyncpg.Pool[Any], username: str) -> str:
    return str(
        await pool.fetchval("SELECT id FROM contacts WHERE telegram_username = $1", username)
    )


async def test_nothing_reaches_telegram_after_a_contact_or_an_account_is_deleted(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    kept_account, _ = await launched(stack, "Kept", ["del_one", "del_two", "del_three"])
    held_account, held_campaign = await launched(stack, "Held", ["acc_one", "acc_two"])

    async def first_sends() -> Any:
        kept, held = await received(pool, kept_account), await received(pool, held_account)
        return (kept, held) if len(kept) == 1 and len(held) == 1 else None

    kept, held = await eventually(first_sends, timeout_s=30)
    # The others wait for their account's next turns, GAP_S apart: delete one of them, and the
    # second campaign's account.
    doomed, survivor = sorted({"del_one", "del_two", "del_three"} - kept)
    doomed_id = await contact_id(pool, doomed)
    assert (await api.delete(f"/contacts/{doomed_id}")).status_code == 204
    assert (await api.delete(f"/telegram-accounts/{held_account}")).status_code == 204

    async def survivor_sent() -> bool:
        return survivor in await received(pool, kept_account)

    await eventually(survivor_sent, timeout_s=30)
    await asyncio.sleep(GAP_S + 2)  # past every turn the deleted ones could have had

    assert await received(pool, kept_account) == kept | {survivor}
    assert await received(pool, held_account) == held
    row = await pool.fetchrow(
        "SELECT status, error_message FROM executions WHERE contact_id = $1", doomed_id
    )
    assert row is not None
    assert (row["status"], row["error_message"]) == ("cancelled", "contact_deleted")
    (waiting,) = set(["acc_one", "acc_two"]) - held
    row = await pool.fetchrow(
        "SELECT status, error_message FROM executions WHERE contact_id = $1",
        await pool.fetchval("SELECT id FROM contacts WHERE telegram_username = $1", waiting),
    )
    assert row is not None
    assert row["status"] in ("pending", "waiting")
    assert row["error_message"] == "account_deleted"
    shown = ok(await api.get(f"/campaign-flows/{held_campaign}"))
    assert shown["sending_blocked"] == "account_deleted"
