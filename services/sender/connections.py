"""How one account reaches Telegram: the API credentials, its device identity and its proxy
(issue 14, items 2 and 3; docs/accounts.md, "Proxies" and "Device identity").

Every connection of an account presents the same device and goes through its proxy: the
sender's client and each login or validation step build their TelegramClient's options from
`client_options(connection)`. Telethon reports a failed
connect as a bare ConnectionError (it drops the cause) or, for an error reply of the proxy, as
python-socks' own exception; `proxy_failure` asks the proxy again directly to tell an
unreachable or refusing proxy (`proxy_unreachable`: the account waits and retries) from a
Telegram that cannot be reached through a working proxy.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Literal

# Imported here, before any connect: Telethon re-points python-socks' error names at builtin
# ones the first time it uses a proxy, and a module imported after that would raise those.
import python_socks
from python_socks.async_.asyncio import Proxy as SocksClient
from telethon.network.connection import ConnectionTcpMTProxyRandomizedIntermediate

from shared.domain.devices import DeviceIdentity

# An MTProxy is reached with Telethon's obfuscated2 connection of the padded ("randomized")
# intermediate framing, which a proxy with a plain or a dd secret accepts; its secret travels in
# `password` (docs/accounts.md, "Proxies").
ProxyKind = Literal["socks5", "http", "mtproxy"]
# How long the diagnosis waits for the proxy (a connect that failed already took its time).
DIAGNOSIS_TIMEOUT_S = 10.0
# What python-socks raises when the proxy cannot be reached, refuses the tunnel or answers
# nonsense; connects catch it beside Telethon's own failures.
PROXY_ERRORS = (
    python_socks.ProxyError,
    python_socks.ProxyConnectionError,
    python_socks.ProxyTimeoutError,
)

_LABELS = {"socks5": "SOCKS5 proxy", "http": "HTTP CONNECT proxy", "mtproxy": "MTProxy"}


@dataclass(frozen=True)
class Proxy:
    """SOCKS5 or HTTP CONNECT, with an optional username and password; or an MTProxy, whose
    secret (32 hex digits, optionally after `dd`) is the password."""

    kind: ProxyKind
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"the {_LABELS[self.kind]} {self.host}:{self.port}"

    def client_options(self) -> dict[str, Any]:
        """TelegramClient's keyword arguments for this proxy."""
        if self.kind == "mtproxy":
            # The MTProxy picks the data centre itself, from the DC id in the obfuscated2 header.
            return {
                "connection": ConnectionTcpMTProxyRandomizedIntermediate,
                "proxy": (self.host, self.port, self.password),
            }
        # rdns: the proxy resolves names, so DNS does not leak the account's real location.
        return {
            "proxy": {
                "proxy_type": self.kind,
                "addr": self.host,
                "port": self.port,
                "username": self.username,
                "password": self.password,
                "rdns": True,
            }
        }


@dataclass(frozen=True)
class ApiCredentials:
    """The api_id/api_hash a client connects with (the organization's own, or Dripline's)."""

    api_id: int
    api_hash: str = field(repr=False)


@dataclass(frozen=True)
class Connection:
    """How one account reaches Telegram: the API credentials, device and proxy."""

    api: ApiCredentials
    device: DeviceIdentity
    proxy: Proxy | None = None


def client_options(connection: Connection) -> dict[str, Any]:
    """TelegramClient's arguments after the session: the credentials, the device sent in
    every initConnection, and the proxy."""
    device = connection.device
    options: dict[str, Any] = {
        "api_id": connection.api.api_id,
        "api_hash": connection.api.api_hash,
        "device_model": device.device_model,
        "system_version": device.system_version,
        "app_version": device.app_version,
        "lang_code": device.lang_code,
        "system_lang_code": device.system_lang_code,
    }
    if connection.proxy is not None:
        options.update(connection.proxy.client_options())
    return options


# How the sender's clients call: every wait reaches the pacer; one attempt per call, the sender
# retries; updates are received (replies, reads) but not caught up at connect.
SENDER_CALLS: dict[str, Any] = {
    "flood_sleep_threshold": 0,
    "raise_last_call_error": True,
    "request_retries": 1,
    "connection_retries": 1,
    "retry_delay": 0,
    "catch_up": False,
    "receive_updates": True,
}


def sender_client_options(connection: Connection) -> dict[str, Any]:
    """The sender's TelegramClient arguments for an account (also what bench/accounts.py
    connects its accounts with)."""
    return client_options(connection) | SENDER_CALLS


async def proxy_failure(
    proxy: Proxy | None, host: str, port: int, exc: BaseException
) -> str | None:
    """Why a connect through `proxy` to Telegram at host:port failed, if the proxy is the
    reason: a `proxy_unreachable: …` detail; None when there is no proxy or it works (the
    failure was Telegram's)."""
    if proxy is None:
        return None
    if proxy.kind == "mtproxy":
        return await _mtproxy_failure(proxy, exc)
    if isinstance(exc, python_socks.ProxyError):
        return f"proxy_unreachable: {proxy.label} refused the connection to Telegram ({exc})"
    if isinstance(exc, PROXY_ERRORS):
        return f"proxy_unreachable: {proxy.label} cannot be reached ({exc})"
    client = SocksClient.create(
        proxy_type=python_socks.ProxyType.SOCKS5
        if proxy.kind == "socks5"
        else python_socks.ProxyType.HTTP,
        host=proxy.host,
        port=proxy.port,
        username=proxy.username,
        password=proxy.password,
        rdns=True,
    )
    try:
        sock = await client.connect(dest_host=host, dest_port=port, timeout=DIAGNOSIS_TIMEOUT_S)
    except python_socks.ProxyError as refused:
        return f"proxy_unreachable: {proxy.label} refused the connection to Telegram ({refused})"
    except OSError as failed:  # ProxyConnectionError and ProxyTimeoutError are OSErrors
        return f"proxy_unreachable: {proxy.label} cannot be reached ({failed})"
    sock.close()
    return None


async def _mtproxy_failure(proxy: Proxy, exc: BaseException) -> str | None:
    """An MTProxy is the only thing the client connects to (it reaches Telegram itself), so a
    failed connection is the proxy's: it cannot be reached, or it closed the connection after
    the obfuscated2 header (a wrong secret, or it cannot reach Telegram either)."""
    if not isinstance(exc, OSError):
        return None  # Telegram's answer, carried by a working proxy
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(proxy.host, proxy.port), DIAGNOSIS_TIMEOUT_S
        )
    except OSError as failed:  # refused, unreachable, timed out
        why = str(failed) or type(failed).__name__
        return f"proxy_unreachable: {proxy.label} cannot be reached ({why})"
    writer.close()
    return (
        f"proxy_unreachable: {proxy.label} closed the connection (a wrong secret, or it cannot "
        f"reach Telegram) ({exc})"
    )
