"""A login and an import through a proxy, as a device, through the real services (issue 14,
items 1-3): every connection of the login's steps and of the import's validation reaches the
fake server through the local SOCKS5 proxy and presents the device given; the account created
keeps both; an account logged in again connects through its own proxy as its own device; a
proxy that cannot be reached is `proxy_unreachable`."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from dripline.account_login import login as cli_login
from dripline.account_login import parse_device, parse_proxy
from dripline.fake_telegram import FakeTelegram
from shared.settings import Settings
from tests.builders import FAST, ok
from tests.e2e.conftest import Stack
from tests.mtproxy import LocalMTProxy
from tests.proxies import LocalProxy
from tests.support import eventually

LOGGED, IMPORTED, AGAIN = 1000, 1001, 1002
PHONE, AGAIN_PHONE = "+15550100", "+15550102"
PASSWORD = "correct horse battery staple"
PROXY_PASSWORD = "proxy password"
DEVICE = {"device_model": "ThinkPad X1", "system_version": "Windows 11",
          "app_version": "5.9.1 x64", "lang_code": "de", "system_lang_code": "de-DE"}  # fmt: skip


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(LOGGED, phone=PHONE, password=PASSWORD)
    server.add_account(IMPORTED)
    server.add_account(AGAIN, phone=AGAIN_PHONE)
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


@pytest.fixture
async def proxy() -> AsyncIterator[LocalProxy]:
    local = LocalProxy("socks5", "login", PROXY_PASSWORD)
    await local.start()
    yield local
    await local.stop()


def socks(proxy: LocalProxy) -> dict[str, Any]:
    return {"type": "socks5", "host": "127.0.0.1", "port": proxy.port, "username": "login",
            "password": PROXY_PASSWORD}  # fmt: skip


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def refused(response: httpx.Response, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code, body
    return body


def came_through(telegram: FakeTelegram, proxy: LocalProxy, since: int) -> set[tuple[str, int]]:
    """The client addresses of the fake's connections since `since`, checked to be the proxy's
    ends of its tunnels (so none came directly)."""
    peers = {connected.peer for connected in telegram.connected[since:]}
    assert peers, "nothing reached the fake server"
    assert peers <= proxy.outbound(), (peers, proxy.outbound())
    return peers


def presented(telegram: FakeTelegram, since: int) -> list[dict[str, str]]:
    inits = telegram.inits[since:]
    assert inits, "no initConnection reached the fake server"
    return [{name: getattr(init, name) for name in DEVICE} for init in inits]


async def health(api: httpx.AsyncClient, account_id: str, *statuses: str) -> Any:
    found = ok(await api.get(f"/telegram-accounts/{account_id}"))
    return found if found["health_status"] in statuses else None


async def test_a_login_and_an_import_connect_through_the_given_proxy_as_the_given_device(
    stack: Stack, telegram: FakeTelegram, proxy: LocalProxy
) -> None:
    api = stack.api
    body = {"phone": PHONE, "display_name": "Proxied", "proxy": socks(proxy), "device": DEVICE}
    started = ok(await api.post("/telegram-accounts/logins", json=body), 201)
    login = f"/telegram-accounts/logins/{started['id']}"
    needs = ok(await api.post(f"{login}/code", json={"code": telegram.last_code(PHONE)}))
    assert needs["status"] == "password_needed"
    done = ok(await api.post(f"{login}/password", json={"password": PASSWORD}))
    assert done["status"] == "logged_in"
    # Start, code and password: three clients, each through the proxy, each as the device.
    assert len(came_through(telegram, proxy, 0)) >= 3
    assert presented(telegram, 0) == [DEVICE] * len(telegram.inits)

    account_id = done["telegram_account_id"]
    account = ok(await api.get(f"/telegram-accounts/{account_id}"))
    assert account["proxy"] == {"type": "socks5", "host": "127.0.0.1", "port": proxy.port,
                                "username": "login", "has_password": True,
                                "has_secret": False}  # fmt: skip
    assert account["device"] == DEVICE
    # The account's own connections (the sender's first health check) keep to them.
    ok(await api.patch(f"/telegram-accounts/{account_id}", json={"pacing": FAST}))
    await eventually(lambda: health(api, account_id, "active", "warming"), timeout_s=30)
    came_through(telegram, proxy, 0)
    assert presented(telegram, 0) == [DEVICE] * len(telegram.inits)

    since, inits = len(telegram.connected), len(telegram.inits)
    tunnels = len(proxy.tunnels)
    body = {"display_name": "Imported", "format": "telethon_string",
            "session": telegram.session_string(IMPORTED), "proxy": socks(proxy),
            "device": DEVICE}  # fmt: skip
    imported = ok(await api.post("/telegram-accounts/import", json=body), 201)
    assert imported["status"] == "logged_in"
    assert len(proxy.tunnels) > tunnels
    assert any(c.account_id == IMPORTED for c in telegram.connected[since:])
    came_through(telegram, proxy, since)
    assert presented(telegram, inits) == [DEVICE] * (len(telegram.inits) - inits)
    account = ok(await api.get(f"/telegram-accounts/{imported['telegram_account_id']}"))
    assert account["proxy"]["port"] == proxy.port
    assert account["device"] == DEVICE
    for name in ("api", "sender"):
        assert PROXY_PASSWORD not in stack[name].output()


async def test_an_account_logged_in_again_connects_through_its_own_proxy_as_its_device(
    stack: Stack, telegram: FakeTelegram, proxy: LocalProxy
) -> None:
    api = stack.api
    body = {"display_name": "Again", "session_kind": "telethon", "phone": AGAIN_PHONE,
            "session_string": telegram.session_string(AGAIN), "pacing": FAST, "warm": True,
            "proxy": socks(proxy), "device": DEVICE}  # fmt: skip
    account_id = ok(await api.post("/telegram-accounts", json=body), 201)["id"]
    await eventually(lambda: health(api, account_id, "active"), timeout_s=30)
    telegram.revoke(AGAIN)
    ok(await api.post(f"/telegram-accounts/{account_id}/health-check"))
    await eventually(lambda: health(api, account_id, "auth_lost"), timeout_s=30)

    since, inits = len(telegram.connected), len(telegram.inits)
    started = ok(await api.post(f"/telegram-accounts/{account_id}/login"), 201)
    code = {"code": telegram.last_code(AGAIN_PHONE)}
    done = ok(await api.post(f"/telegram-accounts/logins/{started['id']}/code", json=code))
    assert (done["status"], done["telegram_account_id"]) == ("logged_in", account_id)
    came_through(telegram, proxy, since)
    assert presented(telegram, inits) == [DEVICE] * (len(telegram.inits) - inits)
    back = ok(await api.get(f"/telegram-accounts/{account_id}"))
    assert back["health_status"] == "active"
    assert back["proxy"]["port"] == proxy.port
    assert back["device"] == DEVICE


async def test_a_proxy_that_cannot_be_reached_is_proxy_unreachable(
    stack: Stack, telegram: FakeTelegram
) -> None:
    api = stack.api
    dead = {"type": "socks5", "host": "127.0.0.1", "port": closed_port()}
    body = {"phone": PHONE, "proxy": dead}
    problem = refused(await api.post("/telegram-accounts/logins", json=body), 502,
                      "proxy_unreachable")  # fmt: skip
    assert "cannot be reached" in problem["detail"]
    body = {"display_name": "Dead proxy", "format": "telethon_string",
            "session": telegram.session_string(IMPORTED), "proxy": dead}  # fmt: skip
    refused(await api.post("/telegram-accounts/import", json=body), 502, "proxy_unreachable")
    # Nothing went around the proxy, and nothing was saved.
    assert telegram.connected == []
    assert ok(await api.get("/telegram-accounts")) == []
    # Checked as a registered account's proxy is, before anything is asked of the sender.
    mtproxy = {"phone": PHONE, "proxy": {**dead, "type": "mtproxy", "secret": "dd0123"}}
    refused(await api.post("/telegram-accounts/logins", json=mtproxy), 422,
            "validation_error")  # fmt: skip
    alone = {"phone": PHONE, "proxy": {**dead, "password": "no username"}}
    refused(await api.post("/telegram-accounts/logins", json=alone), 422, "validation_error")


async def test_the_command_line_login_goes_through_its_proxy_as_its_device(
    stack: Stack, telegram: FakeTelegram, proxy: LocalProxy
) -> None:
    """`dripline accounts login --proxy socks5://… --device …`, as an operator runs it."""
    url = f"socks5://login:{quote(PROXY_PASSWORD)}@127.0.0.1:{proxy.port}"
    device = ",".join(f"{name}={value}" for name, value in DEVICE.items())
    said: list[str] = []
    account_id = await cli_login(
        stack.api, lambda prompt: PHONE if "Phone" in prompt else telegram.last_code(PHONE),
        lambda _: PASSWORD, said.append, display_name="Operator's",
        proxy=parse_proxy(url), device=parse_device(device),
    )  # fmt: skip
    assert said[-1] == f"Logged in: account {account_id}"
    assert len(came_through(telegram, proxy, 0)) >= 3  # start, code, password
    assert presented(telegram, 0) == [DEVICE] * len(telegram.inits)
    account = ok(await stack.api.get(f"/telegram-accounts/{account_id}"))
    assert account["proxy"] == {"type": "socks5", "host": "127.0.0.1", "port": proxy.port,
                                "username": "login", "has_password": True,
                                "has_secret": False}  # fmt: skip
    assert account["device"] == DEVICE


async def test_a_login_through_an_mtproxy_link_keeps_the_mtproxy(
    stack: Stack, telegram: FakeTelegram
) -> None:
    """The link an operator gets for an MTProxy (as `--proxy` takes it), through the API: the
    auth-key exchange, the code and the 2FA password all go through the MTProxy, and the account
    created connects through it too."""
    api = stack.api
    secret = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    relay = LocalMTProxy(secret, ("127.0.0.1", telegram.port))
    await relay.start()
    try:
        link = f"tg://proxy?server=127.0.0.1&port={relay.port}&secret=dd{secret}"
        body = {"phone": PHONE, "display_name": "MTProxied", "proxy": parse_proxy(link)}
        started = ok(await api.post("/telegram-accounts/logins", json=body), 201)
        login = f"/telegram-accounts/logins/{started['id']}"
        needs = ok(await api.post(f"{login}/code", json={"code": telegram.last_code(PHONE)}))
        assert needs["status"] == "password_needed"
        done = ok(await api.post(f"{login}/password", json={"password": PASSWORD}))
        assert done["status"] == "logged_in"
        account_id = done["telegram_account_id"]
        account = ok(await api.get(f"/telegram-accounts/{account_id}"))
        assert account["proxy"] == {"type": "mtproxy", "host": "127.0.0.1", "port": relay.port,
                                    "username": None, "has_password": False,
                                    "has_secret": True}  # fmt: skip
        ok(await api.patch(f"/telegram-accounts/{account_id}", json={"pacing": FAST}))
        await eventually(lambda: health(api, account_id, "active", "warming"), timeout_s=30)
        peers = {c.peer for c in telegram.connected}
        assert len(telegram.inits) >= 4  # start, code, password, the sender's client
        assert {i.peer for i in telegram.inits} <= relay.outbound()
        assert peers <= relay.outbound()
        assert relay.refused == 0
    finally:
        await relay.stop()
