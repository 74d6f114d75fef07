"""A Telethon account's proxy and device identity through the API (issue 14, items 2 and 3): set
when the account is created and the proxy by PATCH, the password sealed and never returned, and
every refusal specific."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from shared.crypto import SessionCipher
from shared.domain.devices import default_device
from tests.api.conftest import PersonFactory
from tests.builders import ok
from tests.support import TEST_SESSION_KEY

PASSWORD = "pr0xy-pa55word"
PROXY = {"type": "socks5", "host": "10.1.2.3", "port": 1080, "username": "ada",
         "password": PASSWORD}  # fmt: skip
SECRET = "0123456789abcdef0123456789abcdef"
MTPROXY = {"type": "mtproxy", "host": "mtproxy.example", "port": 443, "secret": SECRET}
DEVICE = {"device_model": "MacBook Air", "system_version": "macOS 15.1",
          "app_version": "5.9 x64", "lang_code": "de", "system_lang_code": "de-DE"}  # fmt: skip


def _session() -> str:
    session = StringSession()
    session.set_dc(2, "127.0.0.1", 443)
    session.auth_key = AuthKey(bytes(range(256)))
    return str(session.save())


def telethon(**extra: Any) -> dict[str, Any]:
    return {"display_name": "Real", "session_kind": "telethon", "session_string": _session(),
            **extra}  # fmt: skip


async def test_a_proxy_and_a_device_are_kept_and_the_password_never_shown(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    ada = await person("ada-proxy@example.com")

    response = await ada.client.post(
        "/telegram-accounts", json=telethon(proxy=PROXY, device=DEVICE)
    )

    created = ok(response, 201)
    assert created["proxy"] == {"type": "socks5", "host": "10.1.2.3", "port": 1080,
                                "username": "ada", "has_password": True,
                                "has_secret": False}  # fmt: skip
    assert created["device"] == DEVICE
    assert PASSWORD not in response.text
    read = await ada.client.get(f"/telegram-accounts/{created['id']}")
    listed = await ada.client.get("/telegram-accounts")
    assert ok(read)["proxy"] == created["proxy"]
    assert [a["proxy"] for a in ok(listed)] == [created["proxy"]]
    assert PASSWORD not in read.text + listed.text
    stored = await db.fetchrow(
        "SELECT proxy_type, proxy_host, proxy_port, proxy_username, proxy_secret, device_model"
        " FROM telegram_accounts WHERE id = $1",
        UUID(created["id"]),
    )
    assert stored is not None
    assert PASSWORD not in stored["proxy_secret"]
    assert SessionCipher(TEST_SESSION_KEY).open(stored["proxy_secret"]) == PASSWORD
    assert (stored["proxy_type"], stored["proxy_port"], stored["device_model"]) == (
        "socks5",
        1080,
        "MacBook Air",
    )


@pytest.mark.parametrize("secret", [SECRET, "dd" + SECRET.upper()])
async def test_an_mtproxy_is_kept_with_its_secret_sealed_and_never_shown(
    person: PersonFactory, db: asyncpg.Pool[Any], secret: str
) -> None:
    ada = await person("ada-mtproxy@example.com")

    response = await ada.client.post(
        "/telegram-accounts", json=telethon(proxy=MTPROXY | {"secret": secret})
    )

    created = ok(response, 201)
    assert created["proxy"] == {"type": "mtproxy", "host": "mtproxy.example", "port": 443,
                                "username": None, "has_password": False,
                                "has_secret": True}  # fmt: skip
    read = await ada.client.get(f"/telegram-accounts/{created['id']}")
    assert SECRET not in (response.text + read.text).lower()
    stored = await db.fetchrow(
        "SELECT proxy_type, proxy_secret FROM telegram_accounts WHERE id = $1",
        UUID(created["id"]),
    )
    assert stored is not None
    assert stored["proxy_type"] == "mtproxy"
    assert SessionCipher(TEST_SESSION_KEY).open(stored["proxy_secret"]) == secret.lower()


async def test_an_account_without_a_given_device_gets_the_default_for_its_id(
    person: PersonFactory,
) -> None:
    bob = await person("bob-device@example.com")

    created = ok(await bob.client.post("/telegram-accounts", json=telethon()), 201)
    simulated = ok(await bob.client.post("/telegram-accounts", json={"display_name": "S"}), 201)

    expected = default_device(UUID(created["id"]))
    assert created["device"] == {
        "device_model": expected.device_model,
        "system_version": expected.system_version,
        "app_version": expected.app_version,
        "lang_code": "en",
        "system_lang_code": "en-US",
    }
    assert created["proxy"] is None
    assert (simulated["device"], simulated["proxy"]) == (None, None)


async def test_a_patched_proxy_replaces_the_old_one_and_asks_for_a_health_check(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    cy = await person("cy-proxy@example.com")
    created = ok(await cy.client.post("/telegram-accounts", json=telethon(proxy=PROXY)), 201)
    url = f"/telegram-accounts/{created['id']}"
    await db.execute(
        "UPDATE telegram_accounts SET last_checked_at = now(), health_status = 'active'"
        " WHERE id = $1",
        UUID(created["id"]),
    )

    renamed = ok(await cy.client.patch(url, json={"display_name": "Renamed"}))
    assert renamed["proxy"] == created["proxy"]  # a PATCH without `proxy` keeps it
    http = {"type": "http", "host": "proxy.example.com", "port": 3128}
    moved = ok(await cy.client.patch(url, json={"proxy": http}))
    assert moved["proxy"] == {**http, "username": None, "has_password": False,
                              "has_secret": False}  # fmt: skip
    assert moved["last_checked_at"] is None  # the sender reconnects through it at once
    assert moved["device"] == created["device"]
    removed = ok(await cy.client.patch(url, json={"proxy": None}))
    assert removed["proxy"] is None
    stored = await db.fetchrow(
        "SELECT proxy_type, proxy_secret FROM telegram_accounts WHERE id = $1",
        UUID(created["id"]),
    )
    assert stored is not None
    assert (stored["proxy_type"], stored["proxy_secret"]) == (None, None)


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (telethon(proxy=MTPROXY | {"secret": "ee" + SECRET + "676f6f676c652e636f6d"}), 422,
         "mtproxy_fake_tls_unsupported", None),
        (telethon(proxy=MTPROXY | {"secret": SECRET[:-2]}), 422, "validation_error",
         "proxy.secret"),
        (telethon(proxy=MTPROXY | {"secret": "dd" + SECRET[:-1] + "g"}), 422, "validation_error",
         "proxy.secret"),
        (telethon(proxy=MTPROXY | {"secret": None}), 422, "validation_error", "proxy.secret"),
        (telethon(proxy=MTPROXY | {"username": "ada", "password": PASSWORD}), 422,
         "validation_error", "proxy.username"),
        (telethon(proxy=PROXY | {"secret": SECRET}), 422, "validation_error", "proxy.secret"),
        (telethon(proxy={**PROXY, "username": None}), 422, "validation_error", "proxy.password"),
        (telethon(proxy={**PROXY, "port": 0}), 422, "validation_error", "proxy.port"),
        (telethon(proxy={**PROXY, "host": "a b"}), 422, "validation_error", "proxy.host"),
        (telethon(device={**DEVICE, "lang_code": "German"}), 422, "validation_error",
         "device.lang_code"),
        (telethon(device={"device_model": "X"}), 422, "validation_error",
         "device.system_version"),
        ({"display_name": "Sim", "proxy": PROXY}, 422, "validation_error", "proxy"),
        ({"display_name": "Sim", "device": DEVICE}, 422, "validation_error", "device"),
    ],
    ids=["mtproxy-fake-tls", "mtproxy-short-secret", "mtproxy-not-hex", "mtproxy-no-secret",
         "mtproxy-with-credentials", "secret-on-socks5", "password-without-username", "port",
         "host", "lang-code", "device-partial",
         "proxy-on-simulated", "device-on-simulated"],
)  # fmt: skip
async def test_each_bad_proxy_or_device_is_refused_with_its_reason(
    person: PersonFactory, body: dict[str, Any], status: int, code: str, field: str | None
) -> None:
    dee = await person("dee-bad-proxy@example.com")

    response = await dee.client.post("/telegram-accounts", json=body)

    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["code"] == code
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]]
    assert PASSWORD not in response.text
    assert ok(await dee.client.get("/telegram-accounts")) == []


async def test_a_simulated_account_takes_no_proxy_by_patch(person: PersonFactory) -> None:
    eve = await person("eve-sim-proxy@example.com")
    created = ok(await eve.client.post("/telegram-accounts", json={"display_name": "S"}), 201)

    response = await eve.client.patch(f"/telegram-accounts/{created['id']}", json={"proxy": PROXY})

    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["proxy"]


async def test_a_frozen_account_shows_its_appeal_link_and_the_end_telegram_gave(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    ada = await person("ada-frozen@example.com")
    created = ok(await ada.client.post("/telegram-accounts", json=telethon()), 201)
    assert (created["appeal_url"], created["health_until"]) == (None, None)
    # As the sender's health check records a freeze read from help.getAppConfig.
    await db.execute(
        "UPDATE telegram_accounts SET health_status = 'frozen', health_detail = 'frozen by"
        " Telegram', health_until = '2027-01-01T00:00:00Z', appeal_url = 'https://t.me/spambot',"
        " next_check_at = '2026-06-01T13:00:00Z' WHERE id = $1",
        UUID(created["id"]),
    )

    read = ok(await ada.client.get(f"/telegram-accounts/{created['id']}"))

    assert read["health_status"] == "frozen"
    assert read["appeal_url"] == "https://t.me/spambot"
    assert read["health_until"].startswith("2027-01-01T00:00:00")
    assert read["next_check_at"].startswith("2026-06-01T13:00:00")
