"""How an account reaches Telegram (issue 14, items 2 and 3): through its own proxy, and always
as the same device. An unmodified TelegramClient in the sender's Telethon adapter (and the login
core) talks to dripline/fake_telegram through a real local proxy (tests/proxies.py); the fake
records each connection's initConnection and the address it came from, the proxy the address of
each tunnel it opened, so a test can tell which connections went through the proxy."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from dripline.fake_telegram import FakeTelegram
from services.sender import accounts
from services.sender.accounts import QUERIES as SENDER_QUERIES
from services.sender.gateway import Account, Peer, ProxyUnreachable
from services.sender.login import (
    ApiCredentials,
    Connection,
    Endpoint,
    LoginError,
    PhoneLogin,
    Proxy,
    validate_session,
)
from services.sender.telethon_gateway import TelethonTelegram, telethon_default_device
from shared.crypto import SessionCipher
from shared.domain.accounts import AccountHealth
from shared.domain.clock import SystemClock
from shared.domain.devices import DeviceIdentity
from shared.messaging.transaction import transaction
from shared.settings import Settings
from tests.mtproxy import LocalMTProxy
from tests.proxies import LocalProxy

PROXIED, DIRECT, ADA = 1001, 1002, 2001
PHONE = "+15550100"
PROXY_USER, PROXY_PASSWORD = "dripline", "s3cret proxy password"
MTPROXY_SECRET = "0123456789abcdef0123456789abcdef"
MAC = DeviceIdentity("MacBook Pro", "macOS 14.6.1", "5.8.3 x64", "de", "de-DE")
DELL = DeviceIdentity("Dell XPS 15 9530", "Windows 11", "5.10.3 x64", "en", "en-US")


@dataclass
class World:
    server: FakeTelegram
    pool: asyncpg.Pool[Any]
    settings: Settings
    gateway: TelethonTelegram
    cipher: SessionCipher
    user_id: UUID
    ada: UUID

    async def account(
        self, telegram_id: int, device: DeviceIdentity | None, proxy: Proxy | None = None
    ) -> Account:
        d = device
        account_id = await self.pool.fetchval(
            "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind,"
            " session_string, health_status, device_model, system_version, app_version,"
            " lang_code, system_lang_code) VALUES ($1, 'real', 'telethon', $2, 'disconnected',"
            " $3, $4, $5, $6, $7) RETURNING id",
            self.user_id,
            self.cipher.seal(self.server.session_string(telegram_id)),
            *(
                (d.device_model, d.system_version, d.app_version, d.lang_code, d.system_lang_code)
                if d is not None
                else (None,) * 5
            ),
        )
        if proxy is not None:
            await self.set_proxy(account_id, proxy)
        return Account(account_id, "telethon", {})

    async def set_proxy(self, account_id: UUID, proxy: Proxy | None) -> None:
        """As the API stores it: the password sealed."""
        await self.pool.execute(
            "UPDATE telegram_accounts SET proxy_type = $2, proxy_host = $3, proxy_port = $4,"
            " proxy_username = $5, proxy_secret = $6 WHERE id = $1",
            account_id,
            *(
                (
                    proxy.kind,
                    proxy.host,
                    proxy.port,
                    proxy.username,
                    None if proxy.password is None else self.cipher.seal(proxy.password),
                )
                if proxy is not None
                else (None,) * 5
            ),
        )

    async def due(self, account: Account, at: datetime) -> bool:
        """Whether the health check's sweep at `at` would probe the account."""
        rows = await self.pool.fetch(SENDER_QUERIES["accounts_to_probe"], at, at)
        return any(r["id"] == account.id for r in rows)

    async def health_check(
        self, account: Account, later: timedelta = timedelta(0)
    ) -> tuple[str, str | None]:
        """The sender's health check of this account (its sweep's query and `check`), as
        the sweep `later` from now would run it."""
        at = now() + later
        async with transaction(self.pool, SystemClock()) as tx:
            rows = await tx.connection.fetch(SENDER_QUERIES["accounts_to_probe"], now(), at)
            row = next(r for r in rows if r["id"] == account.id)
            await accounts.check(tx.connection, tx.outbox, self.gateway, row, at)
        found = await self.pool.fetchrow(
            "SELECT health_status, health_detail FROM telegram_accounts WHERE id = $1", account.id
        )
        assert found is not None
        return found["health_status"], found["health_detail"]

    def ports_of(self, telegram_id: int) -> list[tuple[str, int]]:
        """The client addresses of that account's connections, as the fake saw them."""
        return [c.peer for c in self.server.connected if c.account_id == telegram_id]


@pytest.fixture
async def world(pool: asyncpg.Pool[Any], settings: Settings) -> AsyncIterator[World]:
    server = FakeTelegram()
    await server.start()
    server.add_account(PROXIED, phone=PHONE)
    server.add_account(DIRECT)
    server.add_user(ADA, username="ada")
    assert settings.session_key is not None
    cipher = SessionCipher(settings.session_key.get_secret_value())
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('t@example.com') RETURNING id")
    ada = await pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, 'ada') RETURNING id",
        user,
    )
    gateway = TelethonTelegram(lambda: pool, settings, SystemClock())
    try:
        yield World(server, pool, settings, gateway, cipher, user, ada)
    finally:
        await gateway.close()
        await server.stop()
    assert server.errors == []


@pytest.fixture
async def proxy() -> AsyncIterator[LocalProxy]:
    local = LocalProxy("socks5", PROXY_USER, PROXY_PASSWORD)
    await local.start()
    yield local
    await local.stop()


def now() -> datetime:
    return datetime.now(UTC)


def closed_port() -> int:
    """A local port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["socks5", "http"])
async def test_an_accounts_traffic_goes_through_its_proxy_and_anothers_does_not(
    world: World, kind: str
) -> None:
    local = LocalProxy(kind, PROXY_USER, PROXY_PASSWORD)  # type: ignore[arg-type]
    await local.start()
    try:
        proxied = await world.account(
            PROXIED,
            MAC,
            Proxy(kind, "127.0.0.1", local.port, PROXY_USER, PROXY_PASSWORD),  # type: ignore[arg-type]
        )
        direct = await world.account(DIRECT, DELL)

        for account in (proxied, direct):
            assert await world.health_check(account) == ("active", None)
            await world.gateway.send(account, Peer("ada", world.ada), "Hi", 7, now())
        # A dropped connection is opened again through the proxy, too.
        world.server.drop_connections(PROXIED)
        await world.gateway.send(proxied, Peer("ada", world.ada), "Again", 8, now())
    finally:
        await local.stop()

    assert [(m.account_id, m.text) for m in world.server.sent] == [
        (PROXIED, "Hi"),
        (DIRECT, "Hi"),
        (PROXIED, "Again"),
    ]
    assert {t.destination for t in local.tunnels} == {("127.0.0.1", world.server.port)}
    assert local.refused == 0
    through_proxy = world.ports_of(PROXIED)
    assert len(through_proxy) >= 2  # connected, dropped, connected again
    assert set(through_proxy) <= local.outbound()
    assert world.ports_of(DIRECT)
    assert not set(world.ports_of(DIRECT)) & local.outbound()


async def test_an_unreachable_proxy_is_proxy_unreachable_and_the_account_retries(
    world: World, proxy: LocalProxy
) -> None:
    account = await world.account(PROXIED, MAC, Proxy("socks5", "127.0.0.1", closed_port()))
    # It was working until its proxy went away.
    await world.pool.execute(
        "UPDATE telegram_accounts SET health_status = 'active' WHERE id = $1", account.id
    )

    health, detail = await world.health_check(account)

    assert health == AccountHealth.DISCONNECTED
    assert detail is not None
    assert detail.startswith("proxy_unreachable: the SOCKS5 proxy 127.0.0.1:")
    assert world.server.inits == []  # nothing reached Telegram
    event = await world.pool.fetchval(
        "SELECT convert_from(value, 'UTF8')::jsonb FROM outbox"
        " WHERE topic = 'dripline.account.events' ORDER BY id DESC LIMIT 1"
    )
    assert event["type"] == "account.health_changed"
    assert (event["payload"]["status"], event["payload"]["detail"]) == ("disconnected", detail)
    # The account is not dead: a check retries after the reconnect backoff (2.5 to 5 s first),
    # through a proxy that works now.
    assert not await world.due(account, now())
    await world.set_proxy(
        account.id, Proxy("socks5", "127.0.0.1", proxy.port, PROXY_USER, PROXY_PASSWORD)
    )
    assert await world.health_check(account, later=timedelta(seconds=5)) == ("active", None)
    assert set(world.ports_of(PROXIED)) <= proxy.outbound()


async def test_a_proxy_that_refuses_the_credentials_is_proxy_unreachable(
    world: World, proxy: LocalProxy
) -> None:
    wrong = Proxy("socks5", "127.0.0.1", proxy.port, PROXY_USER, "not the password")
    account = await world.account(PROXIED, MAC, wrong)

    health, detail = await world.health_check(account)

    assert health == AccountHealth.DISCONNECTED
    assert detail is not None
    assert detail.startswith(f"proxy_unreachable: the SOCKS5 proxy 127.0.0.1:{proxy.port} refused")
    assert proxy.refused >= 1
    with pytest.raises(ProxyUnreachable):
        await world.gateway.send(account, Peer("ada", world.ada), "Hi", 9, now())
    assert world.server.sent == []


@pytest.mark.parametrize("given", [MTPROXY_SECRET, "dd" + MTPROXY_SECRET.upper()])
async def test_an_accounts_traffic_goes_through_its_mtproxy_and_anothers_does_not(
    world: World, given: str
) -> None:
    relay = LocalMTProxy(MTPROXY_SECRET, ("127.0.0.1", world.server.port))
    await relay.start()
    try:
        proxied = await world.account(
            PROXIED, MAC, Proxy("mtproxy", "127.0.0.1", relay.port, password=given)
        )
        direct = await world.account(DIRECT, DELL)

        for account in (proxied, direct):
            assert await world.health_check(account) == ("active", None)
            await world.gateway.send(account, Peer("ada", world.ada), "Hi", 7, now())
        world.server.drop_connections(PROXIED)
        await world.gateway.send(proxied, Peer("ada", world.ada), "Again", 8, now())
    finally:
        await relay.stop()

    assert [(m.account_id, m.text) for m in world.server.sent] == [
        (PROXIED, "Hi"),
        (DIRECT, "Hi"),
        (PROXIED, "Again"),
    ]
    assert relay.refused == 0
    assert {t.dc_id for t in relay.tunnels} == {2}  # the session's DC, in the header
    through_proxy = world.ports_of(PROXIED)
    assert len(through_proxy) >= 2  # connected, dropped, connected again
    assert set(through_proxy) <= relay.outbound()
    assert world.ports_of(DIRECT)
    assert not set(world.ports_of(DIRECT)) & relay.outbound()


async def test_an_mtproxy_with_another_secret_is_proxy_unreachable(world: World) -> None:
    relay = LocalMTProxy(MTPROXY_SECRET, ("127.0.0.1", world.server.port))
    await relay.start()
    try:
        wrong = Proxy("mtproxy", "127.0.0.1", relay.port, password="ab" * 16)
        account = await world.account(PROXIED, MAC, wrong)

        health, detail = await world.health_check(account)

        assert health == AccountHealth.DISCONNECTED
        assert detail is not None
        assert detail.startswith(f"proxy_unreachable: the MTProxy 127.0.0.1:{relay.port} closed")
        assert relay.refused >= 1
        assert relay.tunnels == []
        with pytest.raises(ProxyUnreachable):
            await world.gateway.send(account, Peer("ada", world.ada), "Hi", 9, now())
    finally:
        await relay.stop()
    assert world.server.sent == []
    assert world.server.inits == []


async def test_an_unreachable_mtproxy_is_proxy_unreachable(world: World) -> None:
    gone = Proxy("mtproxy", "127.0.0.1", closed_port(), password=MTPROXY_SECRET)
    account = await world.account(PROXIED, MAC, gone)
    await world.pool.execute(
        "UPDATE telegram_accounts SET health_status = 'active' WHERE id = $1", account.id
    )

    health, detail = await world.health_check(account)

    assert health == AccountHealth.DISCONNECTED  # waits and retries: not a dead account
    assert detail is not None
    assert detail.startswith(f"proxy_unreachable: the MTProxy 127.0.0.1:{gone.port} cannot be")
    assert world.server.inits == []


async def test_a_changed_proxy_is_used_from_the_next_health_check(
    world: World, proxy: LocalProxy
) -> None:
    account = await world.account(PROXIED, MAC)
    assert await world.health_check(account) == ("active", None)
    assert not set(world.ports_of(PROXIED)) & proxy.outbound()

    await world.set_proxy(
        account.id, Proxy("socks5", "127.0.0.1", proxy.port, PROXY_USER, PROXY_PASSWORD)
    )
    assert await world.health_check(account) == ("active", None)
    await world.gateway.send(account, Peer("ada", world.ada), "Hi", 10, now())

    first, *later = world.ports_of(PROXIED)
    assert first not in proxy.outbound()
    assert later
    assert set(later) <= proxy.outbound()


async def test_every_connect_of_an_account_presents_its_stored_device(world: World) -> None:
    mac = await world.account(PROXIED, MAC)
    dell = await world.account(DIRECT, DELL)
    for account in (mac, dell):
        await world.gateway.probe(account, now())
    world.server.drop_connections()
    await world.gateway.send(mac, Peer("ada", world.ada), "Hi", 11, now())
    # Another sender process (a new adapter) presents the same device too.
    await world.gateway.close()
    again = TelethonTelegram(lambda: world.pool, world.settings, SystemClock())
    try:
        await again.probe(mac, now())
    finally:
        await again.close()

    # Three connections; Telethon's own reconnect (after the drop) reuses the MTProto session
    # and sends no initConnection, so two connects described the device, both the same.
    assert len(world.ports_of(PROXIED)) == 3
    mac_inits = [i for i in world.server.inits if i.account_id == PROXIED]
    assert len(mac_inits) == 2
    assert {i.device for i in mac_inits} == {
        ("MacBook Pro", "macOS 14.6.1", "5.8.3 x64", "de", "de-DE")
    }
    assert {i.device for i in world.server.inits if i.account_id == DIRECT} == {
        ("Dell XPS 15 9530", "Windows 11", "5.10.3 x64", "en", "en-US")
    }
    assert {i.api_id for i in world.server.inits} == {world.settings.telegram_api_id}


async def test_an_account_from_before_device_identities_keeps_what_it_presented(
    world: World,
) -> None:
    account = await world.account(PROXIED, None)

    await world.gateway.probe(account, now())

    telethon = telethon_default_device()
    stored = await world.pool.fetchrow(
        "SELECT device_model, system_version, app_version, lang_code, system_lang_code"
        " FROM telegram_accounts WHERE id = $1",
        account.id,
    )
    assert stored is not None
    assert DeviceIdentity(**dict(stored)) == telethon
    assert [i.device for i in world.server.inits] == [
        (
            telethon.device_model,
            telethon.system_version,
            telethon.app_version,
            telethon.lang_code,
            telethon.system_lang_code,
        )
    ]


# -- the login core --------------------------------------------------------------------------


async def test_a_phone_login_and_an_import_check_go_through_the_proxy(
    world: World, proxy: LocalProxy
) -> None:
    connection = Connection(
        ApiCredentials(12345, "0123456789abcdef"),
        MAC,
        Proxy("socks5", "127.0.0.1", proxy.port, PROXY_USER, PROXY_PASSWORD),
    )
    login = PhoneLogin(connection, endpoint=Endpoint(2, "127.0.0.1", world.server.port))

    pending = await login.start(PHONE, now())
    done = await login.submit_code(pending, world.server.last_code(PHONE), now())
    assert not isinstance(done, type(pending))
    checked = await validate_session(done.session, connection)

    assert checked.user_id == PROXIED
    assert len(world.server.inits) == 3  # start, code, validation: one connection each
    assert {i.peer for i in world.server.inits} <= proxy.outbound()
    assert {i.device for i in world.server.inits} == {
        ("MacBook Pro", "macOS 14.6.1", "5.8.3 x64", "de", "de-DE")
    }


async def test_a_phone_login_goes_through_the_mtproxy(world: World) -> None:
    relay = LocalMTProxy(MTPROXY_SECRET, ("127.0.0.1", world.server.port))
    await relay.start()
    try:
        connection = Connection(
            ApiCredentials(12345, "0123456789abcdef"),
            MAC,
            Proxy("mtproxy", "127.0.0.1", relay.port, password="dd" + MTPROXY_SECRET),
        )
        login = PhoneLogin(connection, endpoint=Endpoint(2, "127.0.0.1", world.server.port))
        pending = await login.start(PHONE, now())
        done = await login.submit_code(pending, world.server.last_code(PHONE), now())
        assert not isinstance(done, type(pending))
        checked = await validate_session(done.session, connection)
    finally:
        await relay.stop()

    assert checked.user_id == PROXIED
    assert len(world.server.inits) == 3
    assert {i.peer for i in world.server.inits} <= relay.outbound()


async def test_a_login_through_an_unreachable_proxy_is_refused_with_proxy_unreachable(
    world: World,
) -> None:
    connection = Connection(
        ApiCredentials(12345, "0123456789abcdef"), MAC, Proxy("http", "127.0.0.1", closed_port())
    )
    login = PhoneLogin(connection, endpoint=Endpoint(2, "127.0.0.1", world.server.port))

    with pytest.raises(LoginError) as refused:
        await login.start(PHONE, now())

    assert refused.value.code == "proxy_unreachable"
    assert "the HTTP CONNECT proxy 127.0.0.1:" in refused.value.detail
    assert world.server.inits == []
