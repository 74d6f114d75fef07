"""A Telethon account behind its own proxy, through the real services (issue 14, items 2 and 3):
registered through the API with a SOCKS5 proxy and a device, the sender process connects only
through that proxy and always as that device, while another account connects directly; a proxy
that goes away makes the account disconnected with `proxy_unreachable` (not dead), and it comes
back once the proxy works again. The same for an MTProxy (tests/mtproxy.py), and one with
another secret."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dripline.fake_telegram import FakeTelegram
from tests.builders import END, FAST, SEND, add_contacts, contact, edge, flow, ok
from tests.e2e.conftest import Stack
from tests.mtproxy import LocalMTProxy
from tests.proxies import LocalProxy
from tests.support import eventually

PROXIED, DIRECT, ADA = 1001, 1002, 2001
DEVICE = {"device_model": "ThinkPad T14", "system_version": "Windows 11",
          "app_version": "5.9 x64", "lang_code": "en", "system_lang_code": "en-GB"}  # fmt: skip


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    server.add_account(PROXIED)
    server.add_account(DIRECT)
    server.add_user(ADA, username="ada_proxied")
    try:
        yield server
    finally:
        await server.stop()
    assert server.errors == []


@pytest.fixture
async def proxy() -> AsyncIterator[LocalProxy]:
    local = LocalProxy("socks5", "sender", "proxy password")
    await local.start()
    yield local
    await local.stop()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_an_account_connects_only_through_its_proxy_and_as_its_device(
    stack: Stack, telegram: FakeTelegram, proxy: LocalProxy
) -> None:
    api = stack.api
    socks = {"type": "socks5", "host": "127.0.0.1", "port": proxy.port, "username": "sender",
             "password": "proxy password"}  # fmt: skip

    async def register(telegram_id: int, **extra: Any) -> Any:
        body = {"display_name": f"Real {telegram_id}", "session_kind": "telethon",
                "session_string": telegram.session_string(telegram_id), "pacing": FAST,
                "warm": True, **extra}  # fmt: skip
        return ok(await api.post("/telegram-accounts", json=body), 201)

    proxied = await register(PROXIED, proxy=socks, device=DEVICE)
    direct = await register(DIRECT)

    async def health(account: Any, status: str) -> Any:
        found = ok(await api.get(f"/telegram-accounts/{account['id']}"))
        return found if found["health_status"] == status else None

    await eventually(lambda: health(proxied, "active"))
    await eventually(lambda: health(direct, "active"))
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Behind a proxy", "telegram_account_id": proxied["id"],
                  "flow": flow([SEND, END], [edge("hello", "end")])},
        ),
        201,
    )  # fmt: skip
    ada = await contact(api, "ada_proxied", first_name="Ada")
    await add_contacts(api, created["id"], [ada["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def completed() -> Any:
        campaign = ok(await api.get(f"/campaign-flows/{created['id']}"))
        return campaign if campaign["status"] == "completed" else None

    await eventually(completed, timeout_s=60)
    assert [(m.account_id, m.peer_user_id, m.text) for m in telegram.sent] == [
        (PROXIED, ADA, "Hi Ada!")
    ]
    through = [c.peer for c in telegram.connected if c.account_id == PROXIED]
    straight = [c.peer for c in telegram.connected if c.account_id == DIRECT]
    assert through
    assert straight
    assert set(through) <= proxy.outbound()
    assert not set(straight) & proxy.outbound()
    assert proxy.refused == 0
    presented = {i.device for i in telegram.inits if i.account_id == PROXIED}
    assert presented == {tuple(DEVICE.values())}

    # The proxy goes away: the account is disconnected with the reason, and is not dead.
    url = f"/telegram-accounts/{proxied['id']}"
    ok(await api.patch(url, json={"proxy": {**socks, "port": closed_port()}}))
    gone = await eventually(lambda: health(proxied, "disconnected"))
    assert gone["health_detail"].startswith("proxy_unreachable: the SOCKS5 proxy 127.0.0.1:")
    # Back through a working proxy, the next check finds it well.
    ok(await api.patch(url, json={"proxy": socks}))
    await eventually(lambda: health(proxied, "active"))
    assert set(c.peer for c in telegram.connected if c.account_id == PROXIED) <= proxy.outbound()


async def test_an_account_connects_and_sends_through_its_mtproxy(
    stack: Stack, telegram: FakeTelegram
) -> None:
    api = stack.api
    secret = "00112233445566778899aabbccddeeff"
    relay = LocalMTProxy(secret, ("127.0.0.1", telegram.port))
    await relay.start()
    try:
        mtproxy = {"type": "mtproxy", "host": "127.0.0.1", "port": relay.port,
                   "secret": "dd" + secret}  # fmt: skip
        body = {"display_name": "Behind an MTProxy", "session_kind": "telethon",
                "session_string": telegram.session_string(PROXIED), "pacing": FAST,
                "warm": True, "proxy": mtproxy}  # fmt: skip
        proxied = ok(await api.post("/telegram-accounts", json=body), 201)
        assert proxied["proxy"]["has_secret"] is True
        assert secret not in str(proxied)
        direct_body = {**body, "display_name": "Direct", "proxy": None,
                       "session_string": telegram.session_string(DIRECT)}  # fmt: skip
        direct = ok(await api.post("/telegram-accounts", json=direct_body), 201)

        async def health(account: Any, status: str) -> Any:
            found = ok(await api.get(f"/telegram-accounts/{account['id']}"))
            return found if found["health_status"] == status else None

        await eventually(lambda: health(proxied, "active"))
        await eventually(lambda: health(direct, "active"))
        created = ok(
            await api.post(
                "/campaign-flows",
                json={"name": "Behind an MTProxy", "telegram_account_id": proxied["id"],
                      "flow": flow([SEND, END], [edge("hello", "end")])},
            ),
            201,
        )  # fmt: skip
        ada = await contact(api, "ada_proxied", first_name="Ada")
        await add_contacts(api, created["id"], [ada["id"]])
        ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

        async def completed() -> Any:
            campaign = ok(await api.get(f"/campaign-flows/{created['id']}"))
            return campaign if campaign["status"] == "completed" else None

        await eventually(completed, timeout_s=60)
        assert [(m.account_id, m.peer_user_id, m.text) for m in telegram.sent] == [
            (PROXIED, ADA, "Hi Ada!")
        ]
        through = [c.peer for c in telegram.connected if c.account_id == PROXIED]
        straight = [c.peer for c in telegram.connected if c.account_id == DIRECT]
        assert through
        assert straight
        assert set(through) <= relay.outbound()
        assert not set(straight) & relay.outbound()
        assert relay.refused == 0

        # Another secret: the MTProxy closes the connection; the account waits, not dead.
        url = f"/telegram-accounts/{proxied['id']}"
        ok(await api.patch(url, json={"proxy": {**mtproxy, "secret": "ab" * 16}}))
        wrong = await eventually(lambda: health(proxied, "disconnected"), timeout_s=30)
        assert wrong["health_detail"].startswith(
            f"proxy_unreachable: the MTProxy 127.0.0.1:{relay.port} closed the connection"
        )
        assert relay.refused >= 1
        ok(await api.patch(url, json={"proxy": mtproxy}))
        await eventually(lambda: health(proxied, "active"), timeout_s=30)
    finally:
        await relay.stop()
