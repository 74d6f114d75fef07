"""The Telethon path under faults (issue 14, item 6): all four services as processes, the sender
with the Telethon adapter (an unmodified TelegramClient) against the local MTProto server
(dripline/fake_telegram). Each case ends with the fake's received messages equal to our sent
records one to one (@SpamBot's /start messages left out: they are health checks, not sends)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from dripline.fake_telegram import SPAMBOT_FREE, SPAMBOT_ID, FakeTelegram, spambot_limited
from shared.settings import Settings
from tests.builders import add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

SENDER, ADA, BOB, CY = 1000, 2001, 2002, 2003
PHONE = "+15550100"
FAST = {"min_gap_s": 0, "jitter_s": 0, "flood_margin_s": 0}
# A limited or frozen account's sends come back soon after it is lifted (an hour by default).
QUICK_RETRY = {**FAST, "limited_retry_s": 5}
ONE_SEND = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "hello", "to": "end"}],
}
TWO_SENDS = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}"},
        {"id": "pause", "type": "delay", "seconds": 3},
        {"id": "again", "type": "send_message", "text": "Again, {first_name}"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "pause"},
        {"from": "pause", "to": "again"},
        {"from": "again", "to": "end"},
    ],
}


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(SENDER, phone=PHONE)
    server.add_user(ADA, username="ada_fault")
    server.add_user(BOB, username="bob_fault")
    server.add_user(CY, username="cy_fault")
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


@pytest.fixture
def settings(settings: Settings, telegram: FakeTelegram, tmp_path: Path) -> Settings:
    """The sender can log an account in again against the fake (and trusts its RSA key)."""
    key_file = tmp_path / "fake-telegram.pem"
    key_file.write_text(telegram.rsa_key.public_pem)
    return settings.model_copy(
        update={
            "telegram_login_endpoint": f"2:127.0.0.1:{telegram.port}",
            "telegram_rsa_key_file": key_file,
        }
    )


async def account_of(
    api: httpx.AsyncClient, telegram: FakeTelegram, pacing: dict[str, Any] = FAST
) -> dict[str, Any]:
    """A Telethon account on the fake, once the sender's first health check found it active."""
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={
                "display_name": "Real",
                "session_kind": "telethon",
                "session_string": telegram.session_string(SENDER),
                "phone": PHONE,
                "pacing": pacing,
                "warm": True,
            },
        ),
        201,
    )
    await eventually(lambda: health(api, account["id"], "active"), timeout_s=60)
    return account  # type: ignore[no-any-return]


async def launch(
    api: httpx.AsyncClient,
    account: dict[str, Any],
    usernames: list[str],
    flow: dict[str, Any] = ONE_SEND,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A launched campaign to these people; returns it and their contact ids by username."""
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Faults", "telegram_account_id": account["id"], "flow": flow},
        ),
        201,
    )
    ids = {name: (await contact(api, name))["id"] for name in usernames}
    await add_contacts(api, created["id"], list(ids.values()))
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))
    return created, ids


async def health(api: httpx.AsyncClient, account_id: str, *statuses: str) -> Any:
    found = ok(await api.get(f"/telegram-accounts/{account_id}"))
    return found if found["health_status"] in statuses else None


async def statuses(pool: asyncpg.Pool[Any], campaign_id: str) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT c.telegram_username, e.status FROM executions e"
        " JOIN contacts c ON c.id = e.contact_id WHERE e.campaign_id = $1",
        campaign_id,
    )
    return {r["telegram_username"]: r["status"] for r in rows}


async def all_completed(pool: asyncpg.Pool[Any], campaign_id: str) -> bool:
    found = await statuses(pool, campaign_id)
    return bool(found) and all(s == "completed" for s in found.values())


def received(telegram: FakeTelegram) -> list[Any]:
    """What the fake accepted from our account, @SpamBot's /start messages left out."""
    return [m for m in telegram.sent if m.account_id == SENDER and m.peer_user_id != SPAMBOT_ID]


async def one_to_one(pool: asyncpg.Pool[Any], telegram: FakeTelegram, account_id: str) -> int:
    """Our sent records and the fake's received messages agree one to one (Telegram's message
    id and our random_id); returns how many."""
    ours = await pool.fetch(
        "SELECT telegram_message_id, random_id FROM messages WHERE telegram_account_id = $1"
        " AND direction = 'outgoing' AND status IN ('sent', 'delivered', 'read')",
        account_id,
    )
    theirs = received(telegram)
    assert sorted((r["telegram_message_id"], r["random_id"]) for r in ours) == sorted(
        (m.message_id, m.random_id) for m in theirs
    )
    assert len({m.random_id for m in theirs}) == len(theirs)  # nothing went twice
    return len(theirs)


def sends(telegram: FakeTelegram) -> list[Any]:
    return [
        c for c in telegram.calls if c.account_id == SENDER and c.method == "messages.SendMessage"
    ]


async def test_a_flood_wait_cools_the_account_down_and_nothing_is_sent_inside_it(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    account = await account_of(stack.api, telegram)
    telegram.fail("messages.SendMessage", "FLOOD_WAIT_4", 420, user_id=SENDER)
    campaign, _ = await launch(stack.api, account, ["ada_fault", "bob_fault", "cy_fault"])

    await eventually(lambda: all_completed(pool, campaign["id"]), timeout_s=90)
    flooded = sends(telegram)[0]
    later = [c.at for c in sends(telegram)[1:]]
    assert later, "the sends resumed after the cooldown"
    # Telegram said 4 seconds: no send from that account inside them.
    assert min(later) >= flooded.at + timedelta(seconds=4)
    assert await one_to_one(pool, telegram, account["id"]) == 3
    events = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'account.health_changed'"
        " AND convert_from(value, 'UTF8')::jsonb->'payload'->>'status' = 'cooldown'"
    )
    assert events >= 1


async def test_peer_flood_limits_the_account_until_spambot_clears_it(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = await account_of(stack.api, telegram, QUICK_RETRY)
    telegram.spambot_says(SENDER, spambot_limited())
    telegram.fail("messages.SendMessage", "PEER_FLOOD", 400, user_id=SENDER)
    campaign, _ = await launch(api, account, ["ada_fault", "bob_fault"])

    limited = await eventually(lambda: health(api, account["id"], "limited"), timeout_s=60)
    assert limited["health_status"] == "limited"

    def asked_spambot() -> int:
        return sum(
            1 for m in telegram.sent if m.peer_user_id == SPAMBOT_ID and m.text.strip() == "/start"
        )

    # A check while SpamBot still says limited keeps the account limited: no blind lift.
    asked = asked_spambot()
    ok(await api.post(f"/telegram-accounts/{account['id']}/health-check"))

    async def spambot_asked_again() -> bool:
        return asked_spambot() > asked

    await eventually(spambot_asked_again, timeout_s=60)
    assert await health(api, account["id"], "limited") is not None
    assert received(telegram) == []  # no send to a new peer while limited
    assert set((await statuses(pool, campaign["id"])).values()) == {"pending"}

    telegram.spambot_says(SENDER, SPAMBOT_FREE)
    ok(await api.post(f"/telegram-accounts/{account['id']}/health-check"))
    await eventually(lambda: health(api, account["id"], "active", "warming"), timeout_s=60)
    await eventually(lambda: all_completed(pool, campaign["id"]), timeout_s=90)
    assert await one_to_one(pool, telegram, account["id"]) == 2


async def test_a_connection_dropped_in_a_send_batch_sends_nothing_twice_and_loses_nothing(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    account = await account_of(stack.api, telegram)
    # The first send takes effect and its answer is lost with the connection; the next one's
    # connection drops before Telegram handles it.
    telegram.drop("messages.SendMessage", when="after", user_id=SENDER)
    telegram.drop("messages.SendMessage", when="before", user_id=SENDER)
    campaign, _ = await launch(stack.api, account, ["ada_fault", "bob_fault", "cy_fault"])

    await eventually(lambda: all_completed(pool, campaign["id"]), timeout_s=90)
    assert sorted(m.peer_user_id for m in received(telegram)) == [ADA, BOB, CY]
    assert await one_to_one(pool, telegram, account["id"]) == 3


async def test_a_contact_whose_username_changed_is_resolved_again(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = await account_of(stack.api, telegram)
    campaign, ids = await launch(api, account, ["ada_fault"], TWO_SENDS)

    await eventually(lambda: first_sent(telegram), timeout_s=60)
    # Ada takes a new username and gives hers up; someone else takes the old one.
    telegram.rename(ADA, "ada_renamed")
    telegram.add_user(2999, username="ada_fault")
    ok(await api.patch(f"/contacts/{ids['ada_fault']}", json={"telegram_username": "ada_renamed"}))
    await eventually(lambda: all_completed(pool, campaign["id"]), timeout_s=90)
    assert [(m.peer_user_id, m.text) for m in received(telegram)] == [
        (ADA, "Hi Ada_Fault"),
        (ADA, "Again, Ada_Fault"),
    ]
    resolves = [c for c in telegram.calls if c.method == "contacts.ResolveUsername"]
    assert len([c for c in resolves if c.account_id == SENDER]) >= 2  # resolved again
    assert await one_to_one(pool, telegram, account["id"]) == 2


async def test_a_frozen_account_sends_nothing_until_the_freeze_is_lifted(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = await account_of(stack.api, telegram, QUICK_RETRY)
    now = datetime.now(UTC)
    telegram.freeze(SENDER, since=now, until=now + timedelta(days=3))
    campaign, _ = await launch(api, account, ["ada_fault", "bob_fault"])

    async def frozen_with_appeal() -> Any:
        # The send's FROZEN_METHOD_INVALID freezes it; the check due at once reads the appeal.
        found = await health(api, account["id"], "frozen")
        return found if found and found["appeal_url"] else None

    frozen = await eventually(frozen_with_appeal, timeout_s=60)
    assert frozen["appeal_url"] == "https://t.me/spambot"
    assert received(telegram) == []
    assert set((await statuses(pool, campaign["id"])).values()) == {"pending"}

    telegram.unfreeze(SENDER)
    ok(await api.post(f"/telegram-accounts/{account['id']}/health-check"))
    await eventually(lambda: health(api, account["id"], "active", "warming"), timeout_s=60)
    await eventually(lambda: all_completed(pool, campaign["id"]), timeout_s=90)
    assert await one_to_one(pool, telegram, account["id"]) == 2


async def test_a_session_used_from_elsewhere_stops_the_account_and_fails_its_campaigns(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = await account_of(stack.api, telegram)
    telegram.revoke(SENDER, "AUTH_KEY_DUPLICATED", 406)
    campaign, _ = await launch(api, account, ["ada_fault", "bob_fault"])

    async def failed() -> Any:
        found = ok(await api.get(f"/campaign-flows/{campaign['id']}"))
        return found if found["status"] == "failed" else None

    ended = await eventually(failed, timeout_s=60)
    assert ended["failure_reason"]
    assert await health(api, account["id"], "session_conflict") is not None
    calls = len(telegram.calls)
    # Nothing uses the session any more: a health check asked for does not touch it.
    ok(await api.post(f"/telegram-accounts/{account['id']}/health-check"))
    assert await health(api, account["id"], "session_conflict") is not None
    assert [c for c in telegram.calls[calls:] if c.account_id == SENDER] == []
    assert await one_to_one(pool, telegram, account["id"]) == 0


async def failed(api: httpx.AsyncClient, campaign_id: str) -> Any:
    found = ok(await api.get(f"/campaign-flows/{campaign_id}"))
    return found if found["status"] == "failed" else None


async def first_sent(telegram: FakeTelegram) -> bool:
    return any(m.peer_user_id == ADA for m in received(telegram))


async def test_a_lost_login_fails_the_campaign_with_the_reason_and_is_logged_in_again(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = await account_of(stack.api, telegram)
    campaign, _ = await launch(api, account, ["ada_fault"], TWO_SENDS)
    await eventually(lambda: first_sent(telegram), timeout_s=60)
    telegram.revoke(SENDER)  # AUTH_KEY_UNREGISTERED before the second send (3 s later)

    ended = await eventually(lambda: failed(api, campaign["id"]), timeout_s=60)
    assert "lost its login" in ended["failure_reason"]
    assert await health(api, account["id"], "auth_lost") is not None
    assert await one_to_one(pool, telegram, account["id"]) == 1

    # Logged in again in place: same account, same campaign.
    started = ok(await api.post(f"/telegram-accounts/{account['id']}/login"), 201)
    code = {"code": telegram.last_code(PHONE)}
    done = ok(await api.post(f"/telegram-accounts/logins/{started['id']}/code", json=code))
    assert done["status"] == "logged_in"
    assert done["telegram_account_id"] == account["id"]
    await eventually(lambda: health(api, account["id"], "active", "warming"), timeout_s=60)
    # Launched again (issue 16 item 2): it continues where it stopped, the second message goes
    # and the first is not sent again.
    ok(await api.post(f"/campaign-flows/{campaign['id']}/launch"))

    async def completed() -> Any:
        found = ok(await api.get(f"/campaign-flows/{campaign['id']}"))
        return found if found["status"] == "completed" else None

    await eventually(completed, timeout_s=90)
    assert await one_to_one(pool, telegram, account["id"]) == 2


async def test_a_ban_fails_the_campaign_with_the_reason(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    account = await account_of(stack.api, telegram)
    campaign, _ = await launch(api, account, ["ada_fault"], TWO_SENDS)
    await eventually(lambda: first_sent(telegram), timeout_s=60)
    telegram.ban(SENDER)

    ended = await eventually(lambda: failed(api, campaign["id"]), timeout_s=60)
    assert "banned" in ended["failure_reason"]
    assert await health(api, account["id"], "banned") is not None
    assert await one_to_one(pool, telegram, account["id"]) == 1
    # A banned account cannot log in again: Telegram refuses its phone.
    refused = await api.post(f"/telegram-accounts/{account['id']}/login")
    assert refused.status_code in (403, 409), refused.text
