"""/telegram-accounts: the accounts campaigns send from.

Health (the state, last check, cooldown) belongs to the sender, which checks accounts; here an
account is registered and described. A simulated account starts active, since the simulator is
always reachable; a real one starts disconnected until its first health check.

A Telethon account also has a device identity (chosen once, here, and presented on every
connect) and optionally a proxy that every one of its connections goes through; the proxy's
password is sealed like the session and never returned (docs/accounts.md).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, model_validator
from telethon.sessions import StringSession

from services.api import commands
from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.commands import CommandAccepted
from services.api.deps import CurrentClock, CurrentSettings, Database, Replies
from services.api.problems import Problem, field_error, forbidden, invalid, not_found
from shared.crypto import SessionCipher
from shared.db.pool import DbConnection
from shared.db.rows import ProxyRow, device_columns, device_of, proxy_columns
from shared.db.sql import Queries
from shared.domain.accounts import AccountHealth
from shared.domain.devices import DeviceIdentity, default_device
from shared.domain.permissions import can_manage_organization
from shared.messaging.contracts import AccountHealthCheck, MessageType
from shared.settings import Settings

TELEGRAM_ACCOUNTS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/telegram-accounts", tags=["telegram accounts"])

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DeviceText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
# SOCKS5 (RFC 1929) carries a username and a password of up to 255 bytes each.
ProxyCredential = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class ProxySettings(BaseModel):
    """The proxy every connection of the account goes through (its login, its checks, its
    sends)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["socks5", "http", "mtproxy"] = Field(
        description="`socks5`, `http` for an HTTP CONNECT proxy, or `mtproxy` for a Telegram "
        "MTProxy (with its `secret`, no username or password)."
    )
    host: str = Field(
        min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.:\-]+$", description="Name or IP."
    )
    port: int = Field(ge=1, le=65535)
    username: ProxyCredential | None = None
    password: SecretStr | None = Field(
        default=None,
        max_length=255,
        description="Needs a username. Stored encrypted like the session; never returned (the "
        "account shows `has_password`).",
    )
    secret: SecretStr | None = Field(
        default=None,
        max_length=600,
        description="An MTProxy's secret: 32 hex digits, optionally after `dd` (the padded "
        "intermediate protocol). A fake-TLS secret (`ee` + 32 hex digits + the domain) is "
        "refused (`mtproxy_fake_tls_unsupported`). Stored encrypted, never returned (the "
        "account shows `has_secret`).",
    )


class ProxyView(BaseModel):
    """An account's proxy as the API shows it: never its password."""

    type: Literal["socks5", "http", "mtproxy"]
    host: str
    port: int
    username: str | None
    has_password: bool
    has_secret: bool = Field(description="An MTProxy's secret is stored.")


class DeviceSettings(BaseModel):
    """What Telegram is told about the device on every connect (initConnection), chosen once
    when the account is brought in, so the session never seems to move between devices."""

    model_config = ConfigDict(extra="forbid")
    device_model: DeviceText = Field(examples=["MacBook Pro"])
    system_version: DeviceText = Field(examples=["macOS 14.6.1"])
    app_version: DeviceText = Field(examples=["5.8.3 x64"])
    lang_code: str = Field(default="en", pattern=r"^[a-z]{2,3}$", description="ISO 639 code.")
    system_lang_code: str = Field(
        default="en-US", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$", description="BCP 47 tag."
    )


class PacingSettings(BaseModel):
    """Per-account pacing; omitted values take the conservative defaults (docs/engine.md)."""

    model_config = ConfigDict(extra="forbid")
    min_gap_s: float | None = Field(default=None, ge=0, le=86400)
    jitter_s: float | None = Field(default=None, ge=0, le=3600)
    daily_new_peers: int | None = Field(default=None, ge=0, le=1000)
    flood_margin_s: float | None = Field(default=None, ge=0, le=3600)
    limited_retry_s: float | None = Field(default=None, ge=1, le=7 * 86400)
    warmup_start: int | None = Field(default=None, ge=0, le=1000)
    warmup_step: int | None = Field(default=None, ge=0, le=1000)
    flood_cut: float | None = Field(default=None, ge=0, le=1)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: DisplayName
    phone: str | None = Field(default=None, max_length=32)
    session_kind: Literal["simulated", "telethon"] = "simulated"
    daily_quota: int = Field(
        default=20, ge=0, le=1000, description="New peers a day (the sender may ramp below it)."
    )
    pacing: PacingSettings = Field(default_factory=PacingSettings)
    simulation: dict[str, Any] = Field(
        default_factory=dict,
        description="How the simulated Telegram behaves for this account (docs/engine.md).",
    )
    session_string: SecretStr | None = Field(
        default=None,
        description="A Telethon StringSession of a logged-in account (telethon accounts only). "
        "Stored encrypted, never returned or logged.",
    )
    warm: bool = Field(
        default=False,
        description="An aged account that needs no warm-up; a new one starts warming, its "
        "daily budget of new peers ramping up.",
    )
    proxy: ProxySettings | None = Field(
        default=None, description="Telethon accounts only: the proxy all its connections use."
    )
    device: DeviceSettings | None = Field(
        default=None,
        description="Telethon accounts only: the device it presents to Telegram, for good. "
        "Give the one the session was used with elsewhere; omitted, a realistic desktop set is "
        "picked from the account's id.",
    )


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: DisplayName | None = None
    daily_quota: int | None = Field(default=None, ge=0, le=1000)
    pacing: PacingSettings | None = None
    simulation: dict[str, Any] | None = None
    proxy: ProxySettings | None = Field(
        default=None,
        description="Replaces the proxy, whole (send its password again); null removes it. The "
        "sender reconnects through it at once (a health check is requested). The device "
        "identity cannot be changed.",
    )


class TelegramAccount(BaseModel):
    id: UUID
    organization_id: UUID | None
    owner_user_id: UUID
    display_name: str
    phone: str | None
    session_kind: str
    health_status: AccountHealth
    health_detail: str | None
    last_checked_at: datetime | None
    cooldown_until: datetime | None
    health_until: datetime | None = Field(
        default=None,
        description="When Telegram said a limit (@SpamBot's release date) or a freeze ends; "
        "null when it gave no date or the account is neither limited nor frozen.",
    )
    appeal_url: str | None = Field(
        default=None, description="A frozen account's appeal link (help.getAppConfig)."
    )
    next_check_at: datetime | None = Field(
        default=None,
        description="When the sender checks the account next, for a limited, frozen or "
        "disconnected account on its backoff; null: the regular interval.",
    )
    daily_quota: int
    sent_today: int
    pacing: dict[str, Any]
    simulation: dict[str, Any]
    last_send_at: datetime | None
    created_at: datetime
    updated_at: datetime
    proxy: ProxyView | None = None
    device: DeviceSettings | None = Field(
        default=None,
        description="Null for simulated accounts, and for a Telethon account registered before "
        "device identities until the sender first connects it (it then keeps what it showed).",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        """A telegram_accounts row: its proxy and device columns become the nested views."""
        if not isinstance(data, dict) or "proxy_type" not in data:
            return data
        data = dict(data)
        proxy, device = ProxyRow.from_row(data), device_of(data)
        data["proxy"] = (
            None
            if proxy is None
            else {
                "type": proxy.type,
                "host": proxy.host,
                "port": proxy.port,
                "username": proxy.username,
                "has_password": proxy.type != "mtproxy" and proxy.password_sealed is not None,
                "has_secret": proxy.type == "mtproxy" and proxy.password_sealed is not None,
            }
        )
        data["device"] = None if device is None else asdict(device)
        return data


async def _get(connection: DbConnection, who: Principal, account_id: UUID) -> Any:
    row = await connection.fetchrow(
        TELEGRAM_ACCOUNTS["get"], account_id, who.caller.organization_id, who.caller.user_id
    )
    if row is None:
        raise not_found("telegram_account")
    return row


def _may_manage(who: Principal, row: Any) -> None:
    if row["owner_user_id"] != who.caller.user_id and not can_manage_organization(who.caller.role):
        raise forbidden(
            "only the account's owner, or an organization owner or admin, may change it"
        )


def require_telethon(settings: Settings) -> None:
    """503 `telethon_not_configured` where this deployment cannot run Telethon accounts (an
    account registered with its session, a login, an import)."""
    if (why := settings.telethon_ready) is not None:
        raise Problem(
            503,
            "telethon_not_configured",
            "Telethon accounts are not available",
            f"This deployment cannot run Telethon accounts: {why}",
        )


def _sealed_session(body: AccountCreate, settings: Settings) -> str | None:
    """The session string, checked and encrypted; None for a simulated account."""
    if body.session_kind == "simulated":
        if body.session_string is not None:
            raise invalid([field_error("session_string", "only telethon accounts have a session")])
        return None
    require_telethon(settings)
    if body.session_string is None:
        raise invalid([field_error("session_string", "a telethon account needs its StringSession")])
    session = body.session_string.get_secret_value()
    try:
        StringSession(session)
    except ValueError:
        raise invalid(
            [field_error("session_string", "not a Telethon StringSession")]
        ) from None  # the exception text would quote the secret
    assert settings.session_key is not None
    return SessionCipher(settings.session_key.get_secret_value()).seal(session)


def sealed_proxy(proxy: ProxySettings | None, settings: Settings) -> ProxyRow | None:
    """The proxy as stored, checked and its password sealed; None for none."""
    if proxy is None:
        return None
    kept = proxy.password
    if proxy.type == "mtproxy":
        kept = _mtproxy_secret(proxy)
    elif proxy.secret is not None:
        raise invalid([field_error("proxy.secret", "only an MTProxy has a secret")])
    if proxy.password is not None and proxy.username is None:
        raise invalid([field_error("proxy.password", "a proxy password needs its username")])
    sealed = None
    if kept is not None:
        if settings.session_key is None:
            raise Problem(
                503,
                "telethon_not_configured",
                "Telethon accounts are not available",
                "This deployment has no DRIPLINE_SESSION_KEY to seal the proxy's password with",
            )
        cipher = SessionCipher(settings.session_key.get_secret_value())
        sealed = cipher.seal(kept.get_secret_value())
    return ProxyRow(proxy.type, proxy.host, proxy.port, proxy.username, sealed)


# What Telegram hands out for an MTProxy: 16 bytes in hex, after `dd` for a proxy that wants the
# padded intermediate protocol; `ee` + the 16 bytes + the hex of a domain is a fake-TLS secret.
_MTPROXY_SECRET = re.compile(r"(dd)?[0-9a-f]{32}")
_FAKE_TLS_SECRET = re.compile(r"ee[0-9a-f]{34,}")


def _mtproxy_secret(proxy: ProxySettings) -> SecretStr:
    """The MTProxy's secret, checked and in lower case."""
    wrong = [
        field_error(f"proxy.{name}", "an MTProxy has a secret, not a username or password")
        for name in ("username", "password")
        if getattr(proxy, name) is not None
    ]
    if wrong:
        raise invalid(wrong)
    if proxy.secret is None:
        raise invalid([field_error("proxy.secret", "an MTProxy needs its secret")])
    secret = proxy.secret.get_secret_value().strip().lower()
    if _FAKE_TLS_SECRET.fullmatch(secret):
        raise Problem(
            422,
            "mtproxy_fake_tls_unsupported",
            "Fake-TLS MTProxy secrets are not supported",
            "An `ee` secret asks for the fake-TLS transport, which Telethon does not speak; use "
            "the proxy's plain or `dd` secret, or a SOCKS5 or HTTP CONNECT proxy.",
        )
    if not _MTPROXY_SECRET.fullmatch(secret):
        # The message does not quote the secret.
        raise invalid(
            [field_error("proxy.secret", "an MTProxy secret is 32 hex digits, optionally after dd")]
        )
    return SecretStr(secret)


def _telethon_only(body: AccountCreate) -> None:
    if body.session_kind == "simulated":
        wrong = [name for name in ("proxy", "device") if getattr(body, name) is not None]
        if wrong:
            message = "only telethon accounts connect to Telegram"
            raise invalid([field_error(name, message) for name in wrong])


@router.post("", status_code=201, response_model=TelegramAccount, summary="Register an account")
async def create_account(
    body: AccountCreate, who: CurrentPrincipal, request: Request
) -> TelegramAccount:
    settings = request.app.state.service.settings
    _telethon_only(body)
    sealed = _sealed_session(body, settings)
    proxy = proxy_columns(sealed_proxy(body.proxy, settings))
    account_id = uuid4()
    device: DeviceSettings | DeviceIdentity | None = body.device
    if device is None and body.session_kind == "telethon":
        device = default_device(account_id)
    if body.session_kind == "telethon":
        # Not known to work until the sender has opened the session.
        health, detail = AccountHealth.DISCONNECTED, "waiting for the first health check"
    else:
        health = AccountHealth.ACTIVE if body.warm else AccountHealth.WARMING
        detail = None
    async with pool(request).acquire() as connection:
        row = await connection.fetchrow(
            TELEGRAM_ACCOUNTS["insert"],
            who.caller.organization_id,
            who.caller.user_id,
            body.display_name,
            body.phone,
            body.session_kind,
            health.value,
            body.daily_quota,
            body.pacing.stored(),
            body.simulation,
            sealed,
            not body.warm,
            detail,
            account_id,
            *proxy,
            *device_columns(device),
        )
    return TelegramAccount.model_validate(dict(row))  # type: ignore[arg-type]


@router.get("", response_model=list[TelegramAccount], summary="List accounts")
async def list_accounts(who: CurrentPrincipal, request: Request) -> list[TelegramAccount]:
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(
            TELEGRAM_ACCOUNTS["list"], who.caller.organization_id, who.caller.user_id
        )
    return [TelegramAccount.model_validate(dict(row)) for row in rows]


@router.get("/{account_id}", response_model=TelegramAccount, summary="Read an account")
async def get_account(account_id: UUID, who: CurrentPrincipal, request: Request) -> TelegramAccount:
    async with pool(request).acquire() as connection:
        return TelegramAccount.model_validate(dict(await _get(connection, who, account_id)))


@router.patch("/{account_id}", response_model=TelegramAccount, summary="Edit an account")
async def update_account(
    account_id: UUID, body: AccountPatch, who: CurrentPrincipal, request: Request
) -> TelegramAccount:
    proxy: tuple[Any, ...] | None = None
    async with pool(request).acquire() as connection, connection.transaction():
        row = await _get(connection, who, account_id)
        _may_manage(who, row)
        if "proxy" in body.model_fields_set:
            if row["session_kind"] != "telethon":
                raise invalid([field_error("proxy", "only telethon accounts connect to Telegram")])
            proxy = proxy_columns(sealed_proxy(body.proxy, request.app.state.service.settings))
        updated = await connection.fetchrow(
            TELEGRAM_ACCOUNTS["update"],
            account_id,
            body.display_name if body.display_name is not None else row["display_name"],
            body.daily_quota if body.daily_quota is not None else row["daily_quota"],
            body.pacing.stored() if body.pacing is not None else row["pacing"],
            body.simulation if body.simulation is not None else row["simulation"],
        )
        if proxy is not None:
            updated = await connection.fetchrow(TELEGRAM_ACCOUNTS["set_proxy"], account_id, *proxy)
    return TelegramAccount.model_validate(dict(updated))  # type: ignore[arg-type]


@router.delete("/{account_id}", status_code=204, summary="Remove an account (soft)")
async def delete_account(account_id: UUID, who: CurrentPrincipal, request: Request) -> None:
    """Nothing more is sent from it: its campaigns' unfinished executions wait (reason
    `account_deleted`), and those campaigns can no longer launch until they get another
    account."""
    async with pool(request).acquire() as connection, connection.transaction():
        _may_manage(who, await _get(connection, who, account_id))
        # Executions first: the order a step takes (its executions, then the account row).
        await connection.execute(TELEGRAM_ACCOUNTS["hold_executions"], account_id)
        await connection.execute(TELEGRAM_ACCOUNTS["soft_delete"], account_id)


@router.post(
    "/{account_id}/health-check",
    response_model=TelegramAccount,
    responses={202: {"model": CommandAccepted,
                     "description": "The check was requested and has not finished yet"}},
    summary="Check an account's health now",
)  # fmt: skip
async def check_account(
    account_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    replies: Replies,
) -> TelegramAccount | JSONResponse:
    """The sender probes the account and records what it finds (an account.check_health
    command answered by account.checked); the answer is the account after the check. A banned
    account, or one that lost its login, is not probed: a person must act."""

    async def visible(connection: DbConnection) -> None:
        await _get(connection, who, account_id)

    asked = await commands.ask(
        replies, database, clock, AccountHealthCheck(telegram_account_id=account_id),
        key=account_id, actor=who.actor, outcomes=(MessageType.ACCOUNT_CHECKED,),
        wait_s=settings.command_wait_s, check=visible,
    )  # fmt: skip
    if asked.outcome is None:
        return commands.accepted(
            asked.command, "the health check will run shortly", f"/telegram-accounts/{account_id}"
        )
    async with database.acquire() as connection:
        return TelegramAccount.model_validate(dict(await _get(connection, who, account_id)))
