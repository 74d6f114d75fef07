"""`dripline accounts login`: an operator logs a Telegram account in interactively (phone, code,
2FA password), through the same API endpoints as any client (docs/accounts.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

# A step the sender has not answered within the API's wait (202) is read again this often.
POLL_S = 1.0
POLL_TIMES = 60


DEVICE_FIELDS = ("device_model", "system_version", "app_version", "lang_code", "system_lang_code")
PROXY_SCHEMES = {"socks5": "socks5", "socks5h": "socks5", "http": "http"}


class BadOption(ValueError):
    """A --proxy or --device the command line cannot use (said before anything is sent)."""


def parse_proxy(url: str) -> dict[str, Any]:
    """`socks5://user:pass@host:port`, `http://…`, or an MTProxy link as Telegram hands it out
    (`tg://proxy?server=…&port=…&secret=…` or `https://t.me/proxy?…`) as the API's `proxy`
    object (the API checks the secret)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if (scheme, parts.netloc.lower()) == ("tg", "proxy") or (
        scheme == "https" and parts.netloc.lower() == "t.me" and parts.path == "/proxy"
    ):
        return _mtproxy_link(parts.query)
    kind = PROXY_SCHEMES.get(scheme)
    if kind is None:
        raise BadOption(
            f"a proxy is socks5://…, http://… or tg://proxy?…, not {parts.scheme or url!r}"
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise BadOption(f"the proxy's port: {exc}") from exc
    if not parts.hostname or port is None:
        raise BadOption(f"a proxy needs a host and a port: {kind}://[user:password@]host:port")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise BadOption("a proxy URL has no path, query or fragment")
    proxy: dict[str, Any] = {"type": kind, "host": parts.hostname, "port": port}
    if parts.username:
        proxy["username"] = unquote(parts.username)
    if parts.password:
        proxy["password"] = unquote(parts.password)
    return proxy


def _mtproxy_link(query: str) -> dict[str, Any]:
    fields = {name: values[-1] for name, values in parse_qs(query).items()}
    if not {"server", "port", "secret"} <= fields.keys():
        raise BadOption("an MTProxy link is tg://proxy?server=HOST&port=PORT&secret=SECRET")
    if not fields["port"].isdigit() or not 1 <= int(fields["port"]) <= 65535:
        raise BadOption(f"the MTProxy's port: {fields['port']!r} is not a port number")
    return {"type": "mtproxy", "host": fields["server"], "port": int(fields["port"]),
            "secret": fields["secret"]}  # fmt: skip


def parse_device(text: str) -> dict[str, str]:
    """`device_model=…,system_version=…,app_version=…[,lang_code=…,system_lang_code=…]` as the
    API's `device` object (the API says which fields it needs)."""
    device: dict[str, str] = {}
    for item in text.split(","):
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals or name not in DEVICE_FIELDS:
            raise BadOption(f"a device is name=value pairs of {', '.join(DEVICE_FIELDS)}: "
                            f"not {item.strip()!r}")  # fmt: skip
        if name in device:
            raise BadOption(f"{name} is given twice")
        device[name] = value.strip()
    return device


class LoginFailed(Exception):
    """The API refused a step that cannot be retried at the prompt."""


# Refusals after which the same prompt is asked again.
RETRY_AT_PROMPT = {"phone_code_invalid", "password_invalid"}


async def login(
    client: httpx.AsyncClient,
    ask: Callable[[str], str],
    ask_secret: Callable[[str], str],
    say: Callable[[str], None],
    *,
    account_id: str | None = None,
    display_name: str | None = None,
    proxy: dict[str, Any] | None = None,
    device: dict[str, str] | None = None,
) -> str:
    """Log in (or log `account_id` in again in place, through its own proxy as its own
    device); the account's id. `proxy` and `device` (parse_proxy, parse_device) are the new
    account's: every step of the login goes through that proxy and presents that device."""
    if account_id is not None and (proxy is not None or device is not None):
        raise BadOption("an account logged in again keeps its own proxy and device")
    if account_id is not None:
        answer = await _step(client, f"/telegram-accounts/{account_id}/login", None)
    else:
        phone = ask("Phone number (international format): ").strip()
        body: dict[str, Any] = {"phone": phone}
        if display_name:
            body["display_name"] = display_name
        if proxy is not None:
            body["proxy"] = proxy
        if device is not None:
            body["device"] = device
        answer = await _step(client, "/telegram-accounts/logins", body)
    login_url = f"/telegram-accounts/logins/{answer['id']}"
    say("Telegram sent a login code to the account's Telegram app.")
    while answer["status"] == "code_sent":
        code = ask("Code: ").strip()
        step = await _retrying(client, f"{login_url}/code", {"code": code}, say, "code_sent")
        answer = step or answer
    while answer["status"] == "password_needed":
        password = ask_secret("2FA password: ")
        body = {"password": password}
        step = await _retrying(client, f"{login_url}/password", body, say, "password_needed")
        answer = step or answer
    say(f"Logged in: account {answer['telegram_account_id']}")
    return str(answer["telegram_account_id"])


async def _retrying(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, Any],
    say: Callable[[str], None],
    before: str,
) -> Any:
    """The step's answer, or None after a refusal that the same prompt may retry."""
    try:
        return await _step(client, url, body, before)
    except LoginFailed as exc:
        if exc.args[1] in RETRY_AT_PROMPT:
            say(f"{exc.args[0]}; try again.")
            return None
        raise


async def _step(
    client: httpx.AsyncClient, url: str, body: dict[str, Any] | None, before: str | None = None
) -> Any:
    response = await client.post(url, json=body)
    if response.status_code == 202:
        return await _poll(client, response.headers["Location"], before)
    if response.status_code >= 400:
        problem = response.json()
        detail = problem.get("detail", response.text)
        if "Retry-After" in response.headers:
            detail += f" (retry after {response.headers['Retry-After']} s)"
        raise LoginFailed(f"{problem.get('code')}: {detail}", problem.get("code"))
    return response.json()


async def _poll(client: httpx.AsyncClient, location: str, before: str | None) -> Any:
    """The login once the sender answered: its status moved from `before`, or it ended."""
    for _ in range(POLL_TIMES):
        await asyncio.sleep(POLL_S)
        response = await client.get(location)
        if response.status_code == 404 and before is None:
            continue  # the sender has not recorded the started login yet
        if response.status_code >= 400:
            problem = response.json()
            raise LoginFailed(f"{problem.get('code')}: {problem.get('detail')}", problem["code"])
        if response.json()["status"] != before:
            return response.json()
    raise LoginFailed("the sender did not answer in time", "timeout")
