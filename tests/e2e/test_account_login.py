"""Bringing a real account in through the API (issue 14, item 1), through the real services: the
API asks the sender (account.login / account.import_session commands), the sender logs in with
an unmodified TelegramClient against the local MTProto server (dripline/fake_telegram), whose RSA
key the sender process is handed through `telegram_rsa_key_file`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from telethon.sessions import SQLiteSession, StringSession

from dripline.account_login import login as cli_login
from dripline.fake_telegram import FakeTelegram
from shared.crypto import SessionCipher
from shared.settings import Settings
from tests.builders import END, FAST, SEND, add_contacts, contact, edge, flow, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

SENDER, RELOGGED, BANNED, ADA = 1000, 1001, 1002, 2001
PHONE, RELOGGED_PHONE, BANNED_PHONE = "+15550100", "+15550101", "+15550102"
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(SENDER, phone=PHONE, password=PASSWORD)
    server.add_account(RELOGGED, phone=RELOGGED_PHONE)
    server.add_account(BANNED, phone=BANNED_PHONE)
    server.ban(BANNED)
    server.add_user(ADA, username="ada_login")
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


@pytest.fixture
def settings(settings: Settings, telegram: FakeTelegram, tmp_path: Path) -> Settings:
    """The sender logs in against the fake server and trusts its (per-process) RSA key."""
    key_file = tmp_path / "fake-telegram.pem"
    key_file.write_text(telegram.rsa_key.public_pem)
    return settings.model_copy(
        update={
            "telegram_login_endpoint": f"2:127.0.0.1:{telegram.port}",
            "telegram_rsa_key_file": key_file,
        }
    )


def refused(response: httpx.Response, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


async def health(api: httpx.AsyncClient, account_id: str, *statuses: str) -> Any:
    found = ok(await api.get(f"/telegram-accounts/{account_id}"))
    return found if found["health_status"] in statuses else None


async def test_a_login_with_code_and_password_survives_an_api_restart_and_sends(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram
) -> None:
    api = stack.api
    started = ok(
        await api.post("/telegram-accounts/logins", json={"phone": PHONE, "display_name": "Ours"}),
        201,
    )
    assert started["status"] == "code_sent"
    login = f"/telegram-accounts/logins/{started['id']}"
    code = telegram.last_code(PHONE)
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    refused(await api.post(f"{login}/code", json={"code": wrong}), 422, "phone_code_invalid")
    # A wrong code does not end the login; the pending key is in PostgreSQL, sealed.
    sealed = await pool.fetchval(
        "SELECT pending_secret FROM telegram_logins WHERE id = $1", started["id"]
    )
    assert sealed
    assert PHONE not in sealed
    stack["api"].stop()
    stack["api"].start()
    await stack["api"].wait_healthy()
    needs = ok(await api.post(f"{login}/code", json={"code": code}))
    assert needs["status"] == "password_needed"
    refused(await api.post(f"{login}/password", json={"password": "nope"}), 422, "password_invalid")
    done = ok(await api.post(f"{login}/password", json={"password": PASSWORD}))
    assert done["status"] == "logged_in"
    account_id = done["telegram_account_id"]
    assert done["id"] == started["id"]
    assert done["expires_at"] is None  # nothing left to expire
    assert ok(await api.get(login)) == done  # reading it says what the last step answered
    # Finished: the pending key is gone, and the login cannot be continued.
    assert await pool.fetchval(
        "SELECT pending_secret FROM telegram_logins WHERE id = $1", started["id"]
    ) is None  # fmt: skip
    refused(await api.post(f"{login}/code", json={"code": code}), 410, "login_expired")

    account = ok(await api.get(f"/telegram-accounts/{account_id}"))
    assert (account["display_name"], account["session_kind"]) == ("Ours", "telethon")
    assert "session_string" not in account
    assert account["device"] is not None
    ok(await api.patch(f"/telegram-accounts/{account_id}", json={"pacing": FAST}))
    await eventually(lambda: health(api, account_id, "active", "warming"), timeout_s=30)
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Logged in", "telegram_account_id": account_id,
                  "flow": flow([SEND, END], [edge("hello", "end")])},
        ),
        201,
    )  # fmt: skip
    ada = await contact(api, "ada_login", first_name="Ada")
    await add_contacts(api, created["id"], [ada["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def completed() -> Any:
        campaign = ok(await api.get(f"/campaign-flows/{created['id']}"))
        return campaign if campaign["status"] == "completed" else None

    await eventually(completed, timeout_s=60)
    assert [(m.account_id, m.peer_user_id, m.text) for m in telegram.sent] == [
        (SENDER, ADA, "Hi Ada!")
    ]
    ours = await pool.fetch(
        "SELECT telegram_message_id, random_id FROM messages WHERE direction = 'outgoing'"
    )
    assert [(r["telegram_message_id"], r["random_id"]) for r in ours] == [
        (m.message_id, m.random_id) for m in telegram.sent
    ]
    # Never logged: the password, nor the session (stored sealed).
    sealed_session = await pool.fetchval(
        "SELECT session_string FROM telegram_accounts WHERE id = $1", account_id
    )
    assert stack.settings.session_key is not None
    cipher = SessionCipher(stack.settings.session_key.get_secret_value())
    session = cipher.open(sealed_session)
    assert session.startswith("1")  # a Telethon StringSession, in clear only here
    for name in ("api", "sender"):
        output = stack[name].output()
        assert PASSWORD not in output
        assert session not in output


async def test_every_refusal_has_its_code(stack: Stack, telegram: FakeTelegram) -> None:
    api = stack.api
    logins = "/telegram-accounts/logins"
    refused(await api.post(logins, json={"phone": "+15559999"}), 422, "phone_number_invalid")
    refused(await api.post(logins, json={"phone": BANNED_PHONE}), 403, "phone_number_banned")
    telegram.fail("auth.SendCode", "FLOOD_WAIT_42", 420)
    flood = await api.post(logins, json={"phone": PHONE})
    assert refused(flood, 429, "flood_wait")["retry_after_s"] == 42
    assert flood.headers["Retry-After"] == "42"
    telegram.fail("auth.SendCode", "INTERNAL", 500)
    refused(await api.post(logins, json={"phone": PHONE}), 503, "telegram_unreachable")
    # An expired code ends the login: the next try is login_expired.
    started = ok(await api.post(logins, json={"phone": PHONE}), 201)
    telegram.expire_codes()
    code = {"code": "12345"}
    url = f"{logins}/{started['id']}/code"
    refused(await api.post(url, json=code), 410, "phone_code_expired")
    refused(await api.post(url, json=code), 410, "login_expired")
    refused(await api.get(f"{logins}/{started['id']}"), 410, "login_expired")
    missing = f"{logins}/00000000-0000-4000-8000-000000000000/code"
    refused(await api.post(missing, json=code), 404, "login_not_found")
    # The password step of a login still waiting for its code.
    waiting = ok(await api.post(logins, json={"phone": PHONE}), 201)
    password = {"password": PASSWORD}
    refused(await api.post(f"{logins}/{waiting['id']}/password", json=password), 410,
            "login_expired")  # fmt: skip


async def test_imports_are_validated_by_the_sender_before_the_account_is_saved(
    stack: Stack, pool: asyncpg.Pool[Any], telegram: FakeTelegram, tmp_path: Path
) -> None:
    api = stack.api
    imported = ok(
        await api.post(
            "/telegram-accounts/import",
            json={"display_name": "String", "format": "telethon_string",
                  "session": telegram.session_string(SENDER)},
        ),
        201,
    )  # fmt: skip
    assert imported["status"] == "logged_in"
    account = ok(await api.get(f"/telegram-accounts/{imported['telegram_account_id']}"))
    assert account["phone"] == PHONE.lstrip("+")
    # A Telethon .session file, uploaded as it is.
    string = StringSession(telegram.session_string(RELOGGED))
    file = SQLiteSession(str(tmp_path / "relogged"))
    file.set_dc(string.dc_id, string.server_address, string.port)
    file.auth_key = string.auth_key
    file.save()
    file.close()
    uploaded = await api.post(
        "/telegram-accounts/import?display_name=File",
        content=(tmp_path / "relogged.session").read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    assert ok(uploaded, 201)["status"] == "logged_in"
    # A dead session is refused with the reason, and nothing is saved.
    dead = telegram.session_string(RELOGGED)
    telegram.revoke(RELOGGED)
    body = {"display_name": "Dead", "format": "telethon_string", "session": dead}
    refused(await api.post("/telegram-accounts/import", json=body), 422, "session_dead")
    body = {"display_name": "Junk", "format": "pyrogram", "session": "not a session"}
    refused(await api.post("/telegram-accounts/import", json=body), 422, "session_invalid")
    assert all(dead not in stack[name].output() for name in ("api", "sender"))
    # One Telegram user is one account of a context (two would double its quotas and pace):
    # the same user imported again, or a phone login for its phone, is refused, nothing saved
    # and no code sent.
    twice = {"display_name": "Twice", "format": "telethon_string",
             "session": telegram.session_string(SENDER)}  # fmt: skip
    already = refused(await api.post("/telegram-accounts/import", json=twice), 409,
                      "account_already_connected")  # fmt: skip
    assert imported["telegram_account_id"] in already["detail"]
    refused(await api.post("/telegram-accounts/logins", json={"phone": PHONE}), 409,
            "account_already_connected")  # fmt: skip
    with pytest.raises(KeyError):
        telegram.last_code(PHONE)  # no code was sent
    names = await pool.fetch("SELECT display_name FROM telegram_accounts ORDER BY created_at")
    assert [r["display_name"] for r in names] == ["String", "File"]


async def test_an_account_that_lost_its_login_is_logged_in_again_in_place(
    stack: Stack, telegram: FakeTelegram
) -> None:
    api = stack.api
    body = {
        "display_name": "Again",
        "session_kind": "telethon",
        "phone": RELOGGED_PHONE,
        "session_string": telegram.session_string(RELOGGED),
        "pacing": FAST,
        "warm": True,
    }
    account = ok(await api.post("/telegram-accounts", json=body), 201)  # fmt: skip
    account_id = account["id"]
    await eventually(lambda: health(api, account_id, "active"), timeout_s=30)
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Kept", "telegram_account_id": account_id,
                  "flow": flow([SEND, END], [edge("hello", "end")])},
        ),
        201,
    )  # fmt: skip
    # Not lost: nothing to log in again.
    again = f"/telegram-accounts/{account_id}/login"
    refused(await api.post(again), 409, "account_not_logged_out")
    telegram.revoke(RELOGGED)
    ok(await api.post(f"/telegram-accounts/{account_id}/health-check"))
    await eventually(lambda: health(api, account_id, "auth_lost"), timeout_s=30)

    # Logged in again the way an operator does it: `dripline accounts login --account ID`.
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return telegram.last_code(RELOGGED_PHONE)

    said: list[str] = []
    again_id = await cli_login(api, ask, lambda _: "", said.append, account_id=account_id)
    assert again_id == account_id
    assert prompts == ["Code: "]
    assert said[-1] == f"Logged in: account {account_id}"
    back = ok(await api.get(f"/telegram-accounts/{account_id}"))
    assert (back["health_status"], back["health_detail"]) == ("active", "logged in again")
    accounts = ok(await api.get("/telegram-accounts"))
    assert [a["id"] for a in accounts] == [account_id]
    campaign = ok(await api.get(f"/campaign-flows/{created['id']}"))
    assert campaign["telegram_account_id"] == account_id
    # The new session works: a check through it keeps the account active.
    ok(await api.post(f"/telegram-accounts/{account_id}/health-check"))
    assert (await health(api, account_id, "active")) is not None
