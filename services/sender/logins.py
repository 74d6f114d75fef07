"""Logins and session imports asked of the sender over Kafka (the API on a user's behalf), each
answered by account.login_progressed under the command's correlation id (docs/accounts.md,
"Logging in"; docs/architecture.md, "Request and reply").

The sender owns Telegram I/O, so the steps of the login core (login.py) run here. Between steps
the pending login lives in telegram_logins, sealed like a session with its expiry, so a restart
of the API or of the sender does not lose it. A login that succeeds creates the account with its
sealed session, or, for an account logged in again in place, replaces its lost session and makes
it sendable again (an account.health_changed). Nothing here logs session material.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

from telethon.crypto import rsa

from services.sender.login import (
    TELEGRAM,
    TELEGRAM_DCS,
    ApiCredentials,
    Connection,
    Endpoint,
    LoggedIn,
    LoginError,
    PendingLogin,
    PhoneLogin,
    Proxy,
    parse_pyrogram_session,
    parse_sqlite_session,
    parse_string_session,
    to_string_session,
    validate_session,
)
from shared.crypto import SessionCipher, SessionKeyError
from shared.db.pool import DbConnection
from shared.db.rows import ProxyRow, device_columns, device_of, proxy_columns
from shared.db.sql import Queries
from shared.domain.devices import DeviceIdentity, default_device
from shared.messaging.consumer import Handler, HandlerContext
from shared.messaging.contracts import (
    AccountHealthChanged,
    AccountImportSession,
    AccountLogin,
    AccountLoginProgressed,
    Decoded,
    LoginDevice,
    LoginProxy,
)
from shared.messaging.envelope import Actor, Cause
from shared.settings import Settings

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

# Refusals after which the pending login cannot go on (a new code is needed, or Telegram forgot
# it); after the others (a wrong code or password, a flood wait, Telegram or the proxy out of
# reach) the same step may be tried again.
TERMINAL = frozenset({"phone_code_expired", "login_expired", "phone_number_banned"})


def trust_test_keys(settings: Settings) -> None:
    """Register the server keys of `telegram_rsa_key_file` with Telethon (tests only)."""
    path = settings.telegram_rsa_key_file
    if path is None:
        return
    text = path.read_text()
    marker = "-----END RSA PUBLIC KEY-----"
    for block in text.split(marker):
        if block.strip():
            rsa.add_key(block.strip() + "\n" + marker + "\n", old=False)


def endpoint(settings: Settings) -> Endpoint:
    if settings.telegram_login_endpoint is None:
        return TELEGRAM
    dc, host, port = settings.telegram_login_endpoint.split(":")
    return Endpoint(int(dc), host, int(port))


def data_centres(settings: Settings) -> Mapping[int, tuple[str, int]]:
    """Where an imported session that names only its data centre connects."""
    if settings.telegram_login_endpoint is None:
        return TELEGRAM_DCS
    found = endpoint(settings)
    return dict.fromkeys(TELEGRAM_DCS, (found.host, found.port))


def _failed(login_id: UUID, code: str, detail: str) -> AccountLoginProgressed:
    return AccountLoginProgressed(login_id=login_id, status="failed", code=code, detail=detail)


def _refused(login_id: UUID, error: LoginError) -> AccountLoginProgressed:
    return AccountLoginProgressed(
        login_id=login_id,
        status="failed",
        code=error.code,
        detail=error.detail,
        retry_after_s=error.retry_after,
    )


def _cipher(settings: Settings) -> SessionCipher:
    assert settings.session_key is not None  # telethon_ready checked it
    return SessionCipher(settings.session_key.get_secret_value())


def _api(settings: Settings, api_id: int | None, api_hash: str | None) -> ApiCredentials:
    if api_id is not None and api_hash is not None:
        return ApiCredentials(api_id, api_hash)
    assert settings.telegram_api_id is not None
    assert settings.telegram_api_hash is not None
    return ApiCredentials(settings.telegram_api_id, settings.telegram_api_hash.get_secret_value())


def _device(row: Any, account_id: UUID) -> DeviceIdentity:
    device = None if row is None else device_of(row)
    return default_device(account_id) if device is None else device


def _given_device(device: LoginDevice) -> DeviceIdentity:
    return DeviceIdentity(device.device_model, device.system_version, device.app_version,
                          device.lang_code, device.system_lang_code)  # fmt: skip


def _account_proxy(row: Any) -> LoginProxy | None:
    """An account's stored proxy, its password still sealed (a login again goes through it)."""
    stored = None if row is None else ProxyRow.from_row(row)
    return None if stored is None else LoginProxy(**asdict(stored))


class ProxyKeyError(Exception):
    """A proxy password that the current DRIPLINE_SESSION_KEY cannot open."""


def _proxy(cipher: SessionCipher, proxy: LoginProxy | None) -> Proxy | None:
    if proxy is None:
        return None
    try:
        password = None if proxy.password_sealed is None else cipher.open(proxy.password_sealed)
    except SessionKeyError as exc:
        raise ProxyKeyError(f"the proxy's password: {exc}; set the proxy again") from exc
    return Proxy(proxy.type, proxy.host, proxy.port, proxy.username, password)


def _seal_pending(
    cipher: SessionCipher, pending: PendingLogin, proxy: LoginProxy | None, device: DeviceIdentity
) -> str:
    """The pending login with how its steps connect, sealed together: the proxy (host and
    credentials) is kept no longer and no less protected than the auth key."""
    return cipher.seal(
        json.dumps({
            "pending": pending.to_json(),
            "proxy": None if proxy is None else proxy.model_dump(mode="json"),
            "device": asdict(device),
        })
    )  # fmt: skip


def _open_pending(
    cipher: SessionCipher, sealed: str
) -> tuple[PendingLogin, LoginProxy | None, DeviceIdentity | None]:
    data = json.loads(cipher.open(sealed))
    if "pending" not in data:  # sealed before logins kept their proxy and device
        return PendingLogin.from_json(json.dumps(data)), None, None
    proxy = None if data["proxy"] is None else LoginProxy.model_validate(data["proxy"])
    device = _given_device(LoginDevice.model_validate(data["device"]))
    return PendingLogin.from_json(data["pending"]), proxy, device


@dataclass(frozen=True)
class Asked:
    """What the work on a login command takes beside the command: its transaction, the
    settings, the session key's cipher, who asked, and when."""

    context: HandlerContext
    settings: Settings
    cipher: SessionCipher
    actor: Actor
    now: datetime

    @property
    def connection(self) -> DbConnection:
        return self.context.connection


C = TypeVar("C", AccountLogin, AccountImportSession)
# The work on a login command (Telethon configured), answered by what it returns.
Answer = Callable[[Asked, C], Awaitable[AccountLoginProgressed]]


def _answering(settings: Settings, answer: Answer[C]) -> Handler[C]:
    """A login command's handler: its answer goes out as account.login_progressed, keyed by the
    login and under the command's correlation id; where Telethon accounts are not configured
    the answer says so and nothing else is done."""

    async def handle(context: HandlerContext, message: Decoded[C]) -> None:
        actor = message.envelope.actor
        assert actor is not None  # the contract requires one
        command, now = message.payload, context.clock.now()
        if (why := settings.telethon_ready) is not None:
            reply = _failed(
                command.login_id, "telethon_not_configured", f"Telethon accounts are {why}"
            )
        else:
            asked = Asked(context, settings, _cipher(settings), actor, now)
            reply = await answer(asked, command)
        context.outbox.emit(reply, key=command.login_id, cause=Cause.of(message.envelope), at=now)

    return handle


def login_handler(settings: Settings) -> Handler[AccountLogin]:
    return _answering(settings, _step)


def import_handler(settings: Settings) -> Handler[AccountImportSession]:
    return _answering(settings, _import)


async def _step(asked: Asked, command: AccountLogin) -> AccountLoginProgressed:
    login_id = command.login_id
    await asked.connection.execute(QUERIES["forget_expired"], asked.now)
    try:
        if command.step == "start":
            return await _start(asked, command)
        return await _continue(asked, command)
    except ProxyKeyError as exc:
        return _failed(login_id, "proxy_unreachable", f"proxy_unreachable: {exc}")
    except SessionKeyError as exc:
        return _failed(login_id, "login_expired", f"{exc}; start again")


async def _start(asked: Asked, command: AccountLogin) -> AccountLoginProgressed:
    connection, settings, cipher, actor, now = (
        asked.connection, asked.settings, asked.cipher, asked.actor, asked.now)  # fmt: skip
    login_id, account = command.login_id, None
    if command.telegram_account_id is not None:
        account = await connection.fetchrow(
            QUERIES["account_to_log_in_again"],
            command.telegram_account_id,
            actor.organization_id,
            actor.user_id,
        )
        if account is None or account["session_kind"] != "telethon":
            return _failed(
                login_id,
                "telegram_account_not_found",
                "no such Telethon account that the actor may manage",
            )
        if account["health_status"] != "auth_lost":
            return _failed(
                login_id,
                "account_not_logged_out",
                f"the account is {account['health_status']}: only an account that lost its "
                "login (auth_lost) is logged in again in place",
            )
    phone = (account["phone"] if account is not None else None) or command.phone
    if not phone:
        return _failed(login_id, "phone_number_invalid", "no phone number to log in with")
    if account is None:
        refused = await _already_connected(
            connection, login_id, actor.organization_id, actor.user_id, phone
        )
        if refused is not None:
            return refused
    account_id = command.telegram_account_id or uuid4()
    api_hash = None if command.api_hash_sealed is None else cipher.open(command.api_hash_sealed)
    # An account logged in again keeps connecting as it always did; a new one as asked.
    if account is not None:
        proxy, device = _account_proxy(account), _device(account, account_id)
    else:
        proxy = command.proxy
        device = (
            _given_device(command.device)
            if command.device is not None
            else default_device(account_id)
        )
    api = _api(settings, command.api_id, api_hash)
    way = Connection(api, device, _proxy(cipher, proxy))
    try:
        pending = await PhoneLogin(way, endpoint=endpoint(settings)).start(phone, now)
    except LoginError as error:
        return _refused(login_id, error)
    display_name = command.display_name or (account["display_name"] if account else phone)
    await connection.execute(
        QUERIES["insert_login"], login_id, actor.organization_id, actor.user_id, account_id,
        account is not None, phone, display_name, command.api_id, command.api_hash_sealed,
        _seal_pending(cipher, pending, proxy, device), pending.expires_at, now,
    )  # fmt: skip
    return AccountLoginProgressed(
        login_id=login_id,
        status="code_sent",
        telegram_account_id=account_id,
        expires_at=pending.expires_at,
    )


async def _already_connected(
    connection: DbConnection,
    login_id: UUID,
    organization_id: UUID | None,
    user_id: UUID,
    phone: str | None,
) -> AccountLoginProgressed | None:
    """The refusal of a second account for a phone the context already has (checked before
    the code is sent, and again when the account would be written: two logins may race)."""
    if not phone:
        return None
    existing = await connection.fetchrow(
        QUERIES["account_of_phone"], organization_id, user_id, phone
    )
    if existing is None:
        return None
    again = (
        f"; log it in again in place with POST /telegram-accounts/{existing['id']}/login"
        if existing["health_status"] == "auth_lost"
        else ""
    )
    return _failed(
        login_id,
        "account_already_connected",
        f"this phone is already account {existing['id']} ({existing['display_name']}, "
        f"{existing['health_status']}){again}",
    )


async def _continue(asked: Asked, command: AccountLogin) -> AccountLoginProgressed:
    connection, settings, cipher, actor, now = (
        asked.connection, asked.settings, asked.cipher, asked.actor, asked.now)  # fmt: skip
    login_id = command.login_id
    row = await connection.fetchrow(QUERIES["login_to_continue"], login_id, actor.user_id)
    if row is None:
        return _failed(login_id, "login_not_found", "no such login of the actor's")
    if row["pending_secret"] is None:
        why = (
            "this login finished already"
            if row["status"] == "logged_in"
            else f"this login ended ({row['failure_code']}); start again"
        )
        return _failed(login_id, "login_expired", why)
    pending, proxy, device = _open_pending(cipher, row["pending_secret"])
    account = None
    if row["relogin"]:
        account = await connection.fetchrow(
            QUERIES["account_to_log_in_again"],
            row["telegram_account_id"],
            row["organization_id"],
            actor.user_id,
        )
        if account is None:
            await connection.execute(QUERIES["login_failed"], login_id, "login_expired", now)
            return _failed(login_id, "telegram_account_not_found", "the account is gone")
    api_hash = None if row["api_hash_secret"] is None else cipher.open(row["api_hash_secret"])
    if device is None:  # a login started before its device was kept with it
        device = _device(account, row["telegram_account_id"])
    way = Connection(_api(settings, row["api_id"], api_hash), device, _proxy(cipher, proxy))
    login = PhoneLogin(way, endpoint=endpoint(settings))
    try:
        if command.step == "code":
            if not command.code:
                return _failed(login_id, "phone_code_invalid", "no code was given")
            result: LoggedIn | PendingLogin = await login.submit_code(pending, command.code, now)
        else:
            if command.password_sealed is None:
                return _failed(login_id, "password_invalid", "no password was given")
            password = cipher.open(command.password_sealed)
            result = await login.submit_password(pending, password, now)
    except LoginError as error:
        if error.code in TERMINAL:
            await connection.execute(QUERIES["login_failed"], login_id, error.code, now)
        return _refused(login_id, error)
    if isinstance(result, PendingLogin):
        sealed = _seal_pending(cipher, result, proxy, device)
        await connection.execute(QUERIES["login_waits_for_password"], login_id, sealed, now)
        return AccountLoginProgressed(
            login_id=login_id,
            status="password_needed",
            telegram_account_id=row["telegram_account_id"],
            expires_at=result.expires_at,
        )
    account_id = row["telegram_account_id"]
    session = cipher.seal(result.session)
    if account is not None:
        changed = await connection.fetchrow(QUERIES["logged_in_again"], account_id, session, now)
        assert changed is not None  # locked above
        asked.context.outbox.emit(
            AccountHealthChanged(
                telegram_account_id=account_id,
                previous_status=changed["previous_status"],
                status=changed["health_status"],
                detail="logged in again",
            ),
            key=account_id,
            cause=Cause(actor),
            at=now,
        )
    else:
        refused = await _already_connected(
            connection, login_id, row["organization_id"], row["owner_user_id"],
            result.phone or row["phone"],
        )  # fmt: skip
        if refused is not None:
            await connection.execute(
                QUERIES["login_failed"], login_id, "account_already_connected", now
            )
            return refused
        await _insert_account(
            connection, account_id, row["organization_id"], row["owner_user_id"],
            row["display_name"], result.phone or row["phone"], session, device, proxy, now,
        )  # fmt: skip
    await connection.execute(QUERIES["login_finished"], login_id, now)
    return AccountLoginProgressed(
        login_id=login_id, status="logged_in", telegram_account_id=account_id
    )


async def _insert_account(
    connection: DbConnection,
    account_id: UUID,
    organization_id: UUID | None,
    owner_user_id: UUID,
    display_name: str,
    phone: str | None,
    sealed_session: str,
    device: DeviceIdentity,
    proxy: LoginProxy | None,
    now: datetime,
) -> None:
    await connection.execute(
        QUERIES["insert_account"], account_id, organization_id, owner_user_id, display_name,
        phone, sealed_session, *device_columns(device), now, *proxy_columns(proxy),
    )  # fmt: skip


async def _import(asked: Asked, command: AccountImportSession) -> AccountLoginProgressed:
    settings, cipher, actor, now = asked.settings, asked.cipher, asked.actor, asked.now
    login_id, connection = command.login_id, asked.connection
    account_id = uuid4()
    device = default_device(account_id) if command.device is None else _given_device(command.device)
    try:
        proxy = _proxy(cipher, command.proxy)
    except ProxyKeyError as exc:
        return _failed(login_id, "proxy_unreachable", f"proxy_unreachable: {exc}")
    try:
        material = cipher.open(command.session_sealed)
        if command.format == "telethon_string":
            imported = parse_string_session(material)
        elif command.format == "pyrogram":
            imported = parse_pyrogram_session(material)
        else:
            try:
                data = base64.b64decode(material, validate=True)
            except binascii.Error as exc:
                raise LoginError("session_invalid", f"not base64: {exc}") from exc
            imported = parse_sqlite_session(data)
        session = to_string_session(imported, data_centres(settings))
        way = Connection(_api(settings, None, None), device, proxy)
        found = await validate_session(session, way)
    except SessionKeyError as exc:
        return _failed(login_id, "session_invalid", str(exc))
    except ValueError as exc:  # an address that is not an IP address
        return _failed(login_id, "session_invalid", f"unusable session address: {exc}")
    except LoginError as error:
        return _refused(login_id, error)
    refused = await _already_connected(
        connection, login_id, actor.organization_id, actor.user_id, found.phone
    )
    if refused is not None:
        return refused
    await _insert_account(
        connection, account_id, actor.organization_id, actor.user_id, command.display_name,
        found.phone, cipher.seal(session), device, command.proxy, now,
    )  # fmt: skip
    return AccountLoginProgressed(
        login_id=login_id, status="logged_in", telegram_account_id=account_id
    )
