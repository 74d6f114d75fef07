"""Bringing a real account in: a phone login in steps, and the import of a session someone
already has (issue 14, item 1; docs/accounts.md, "Logging in").

Only Telethon's raw requests are used (auth.sendCode, auth.signIn, account.getPassword and
auth.checkPassword through `telethon.password.compute_check`, users.getFullUser), never
`sign_in()` or `get_me()`: those keep state in the client object or turn a 401 into None, and a
login here spans several API requests, possibly on several processes. What a login needs
between its steps is a `PendingLogin`: the phone, Telegram's phone_code_hash and the session
holding the auth key the code was asked for on (Telegram accepts the code only on that key).
It is session material: the caller stores it sealed (`shared.crypto.SessionCipher`) and with
its expiry; nothing here logs it.

Every refusal is a `LoginError` with a specific code (`LoginErrorCode`).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import sqlite3
import struct
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from telethon import TelegramClient, errors, functions, types
from telethon import password as telethon_password
from telethon.crypto import AuthKey
from telethon.errors.common import AuthKeyNotFound
from telethon.sessions import StringSession

from services.sender.connections import (
    PROXY_ERRORS,
    ApiCredentials,
    Connection,
    Proxy,
    client_options,
    proxy_failure,
)
from services.sender.gateway import AccountDead
from services.sender.telethon_errors import categorize
from shared.domain.devices import DeviceIdentity

__all__ = ["ApiCredentials", "Connection", "DeviceIdentity", "Proxy"]

LoginErrorCode = Literal[
    "phone_number_invalid",
    "phone_code_invalid",
    "phone_code_expired",
    "password_invalid",
    "flood_wait",
    "phone_number_banned",
    "login_expired",
    "login_refused",
    "telegram_unreachable",
    "session_invalid",
    "session_dead",
    "session_conflict",
    "proxy_unreachable",
]
# How long a started login may wait for its code and password. Telegram's codes live for
# minutes; an operator who comes back later starts again.
LOGIN_TTL = timedelta(minutes=15)
# What a raw Telethon call raises: RPC errors, a lost connection, a key the server forgot, a
# proxy's refusal.
_FAILURES = (errors.RPCError, OSError, AuthKeyNotFound, *PROXY_ERRORS)
# Telegram's production data centres (Pyrogram sessions carry only the number).
TELEGRAM_DCS: Mapping[int, tuple[str, int]] = {
    1: ("149.154.175.53", 443),
    2: ("149.154.167.51", 443),
    3: ("149.154.175.100", 443),
    4: ("149.154.167.91", 443),
    5: ("91.108.56.130", 443),
}


class LoginError(Exception):
    """A login or import refused, with the problem code the API answers with."""

    def __init__(self, code: LoginErrorCode, detail: str, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: LoginErrorCode = code
        self.detail = detail
        self.retry_after = retry_after


@dataclass(frozen=True)
class Endpoint:
    """Where a new login connects first (Telegram's DC 2; the fake server in tests)."""

    dc_id: int
    host: str
    port: int


TELEGRAM = Endpoint(2, *TELEGRAM_DCS[2])


@dataclass(frozen=True)
class PendingLogin:
    phone: str
    phone_code_hash: str
    session: str = field(repr=False)  # the auth key the code was asked on
    expires_at: datetime
    password_needed: bool = False

    def to_json(self) -> str:
        """For storage; seal it first (it holds an auth key)."""
        data = asdict(self)
        data["expires_at"] = self.expires_at.isoformat()
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> PendingLogin:
        data = json.loads(text)
        data["expires_at"] = datetime.fromisoformat(data["expires_at"])
        return cls(**data)


@dataclass(frozen=True)
class LoggedIn:
    """A working session (a Telethon StringSession) and whose it is."""

    session: str = field(repr=False)
    user_id: int
    phone: str | None
    username: str | None
    first_name: str | None


@dataclass(frozen=True)
class ImportedSession:
    """Session material from any format: the data centre and its 256-byte auth key, and the
    address when the format names one."""

    dc_id: int
    auth_key: bytes = field(repr=False)
    host: str | None = None
    port: int | None = None


# -- the mapping of Telegram's answers ---------------------------------------------------------

_BY_CLASS: tuple[tuple[tuple[type[BaseException], ...], LoginErrorCode, str], ...] = (
    (
        (errors.PhoneNumberInvalidError, errors.PhoneNumberUnoccupiedError),
        "phone_number_invalid",
        "Telegram knows no account with this phone number",
    ),
    (
        (errors.PhoneCodeInvalidError, errors.PhoneCodeEmptyError),
        "phone_code_invalid",
        "the code is wrong",
    ),
    (
        (errors.PhoneCodeExpiredError,),
        "phone_code_expired",
        "the code has expired; start the login again for a new one",
    ),
    ((errors.PasswordHashInvalidError,), "password_invalid", "the 2FA password is wrong"),
    (
        (
            errors.PhoneNumberBannedError,
            errors.UserDeactivatedBanError,
            errors.UserDeactivatedError,
        ),
        "phone_number_banned",
        "Telegram has banned this phone number",
    ),
    (
        (
            errors.PhoneCodeHashEmptyError,
            errors.SrpIdInvalidError,
            errors.AuthRestartError,
            errors.AuthKeyUnregisteredError,
            errors.SessionRevokedError,
            errors.SessionExpiredError,
            AuthKeyNotFound,
        ),
        "login_expired",
        "Telegram no longer knows this login; start again",
    ),
)


def login_failure(exc: BaseException) -> LoginError:
    """The problem for what Telethon raised during a login step."""
    name = type(exc).__name__
    if isinstance(exc, errors.FloodWaitError | errors.FloodPremiumWaitError):
        return LoginError("flood_wait", f"{name}: Telegram asks to wait", int(exc.seconds))
    if isinstance(exc, errors.PhoneNumberFloodError | errors.PhonePasswordFloodError):
        return LoginError("flood_wait", f"{name}: too many attempts for this phone")
    for classes, code, detail in _BY_CLASS:
        if isinstance(exc, classes):
            return LoginError(code, f"{detail} ({name})")
    if isinstance(exc, OSError | errors.ServerError | errors.TimedOutError):
        return LoginError("telegram_unreachable", f"{name}: {exc}")
    return LoginError("login_refused", f"Telegram refused the login: {exc}")


# -- the phone login ---------------------------------------------------------------------------

# A new auth key is the DH secret g^ab as its shortest big-endian bytes (Telethon's
# get_byte_array), so one in 256 has 255 bytes; a StringSession stores 256 (struct "256s"),
# padding with a zero at the end, and the key read back is another key that Telegram does not
# know: the login's next step failed with AuthKeyNotFound (CI saw it). Such a key is dropped and
# a new one made before the code is asked for.
AUTH_KEY_BYTES = 256
KEY_ATTEMPTS = 4


def keeps_in_a_string_session(key: bytes | None) -> bool:
    return key is not None and len(key) == AUTH_KEY_BYTES


class PhoneLogin:
    """The steps of a phone login; each opens a client on the pending session and closes it."""

    def __init__(
        self, connection: Connection, *, endpoint: Endpoint = TELEGRAM, ttl: timedelta = LOGIN_TTL
    ) -> None:
        self._connection = connection
        self._endpoint = endpoint
        self._ttl = ttl

    async def start(self, phone: str, now: datetime) -> PendingLogin:
        """Ask Telegram to send a login code to the phone's Telegram app (or SMS)."""
        client = _client(self._new_session(), self._connection)
        try:
            await client.connect()
            for _ in range(KEY_ATTEMPTS - 1):
                if keeps_in_a_string_session(client.session.auth_key.key):
                    break
                await _close(client)
                client = _client(self._new_session(), self._connection)
                await client.connect()
            sent = await client(
                functions.auth.SendCodeRequest(
                    phone,
                    self._connection.api.api_id,
                    self._connection.api.api_hash,
                    types.CodeSettings(),
                )
            )
            saved = client.session.save()
        except _FAILURES as exc:
            raise await _failed(exc, client, self._connection, login_failure) from exc
        finally:
            await _close(client)
        if isinstance(sent, types.auth.SentCodeSuccess):
            raise LoginError("login_refused", "Telegram logged in without a code; start again")
        return PendingLogin(phone, sent.phone_code_hash, saved, now + self._ttl)

    def _new_session(self) -> StringSession:
        session = StringSession()
        session.set_dc(self._endpoint.dc_id, self._endpoint.host, self._endpoint.port)
        return session

    async def submit_code(
        self, pending: PendingLogin, code: str, now: datetime
    ) -> LoggedIn | PendingLogin:
        """A `LoggedIn`, or the pending login again with password_needed when the account has
        a 2FA password (then `submit_password`)."""
        _check_open(pending, now)
        if pending.password_needed:
            raise LoginError("login_expired", "the code was accepted already; send the password")
        client = _client(StringSession(pending.session), self._connection)
        try:
            await client.connect()
            try:
                result = await client(
                    functions.auth.SignInRequest(
                        pending.phone, pending.phone_code_hash, phone_code=code
                    )
                )
            except errors.SessionPasswordNeededError:
                return replace(pending, password_needed=True)
            return _logged_in(client, result)
        except _FAILURES as exc:
            raise await _failed(exc, client, self._connection, login_failure) from exc
        finally:
            await _close(client)

    async def submit_password(
        self, pending: PendingLogin, password: str, now: datetime
    ) -> LoggedIn:
        _check_open(pending, now)
        if not pending.password_needed:
            raise LoginError("login_expired", "this login is waiting for its code, not a password")
        client = _client(StringSession(pending.session), self._connection)
        try:
            await client.connect()
            # A challenge (srp_id) is good for one answer: a stale one is asked for afresh once.
            for attempt in (1, 2):
                challenge = await client(functions.account.GetPasswordRequest())
                try:
                    check = telethon_password.compute_check(challenge, password)
                    result = await client(functions.auth.CheckPasswordRequest(check))
                except errors.SrpIdInvalidError:
                    if attempt == 2:
                        raise
                    continue
                return _logged_in(client, result)
            raise AssertionError("unreachable: the second attempt returns or raises")
        except _FAILURES as exc:
            raise await _failed(exc, client, self._connection, login_failure) from exc
        finally:
            await _close(client)


async def _close(client: TelegramClient) -> None:
    await client.disconnect()
    # Telethon also sets a failed connect's error on `disconnected`; it was raised to the caller
    # already, so it is read here rather than logged by asyncio as never retrieved.
    disconnected = client.disconnected
    if disconnected.done() and not disconnected.cancelled():
        disconnected.exception()


async def _failed(
    exc: BaseException,
    client: TelegramClient,
    connection: Connection,
    mapping: Callable[[BaseException], LoginError],
) -> LoginError:
    """The refusal for a failed step: the proxy's, when a connection failed because of it."""
    if isinstance(exc, (OSError, *PROXY_ERRORS)):
        session = client.session
        why = await proxy_failure(connection.proxy, session.server_address, session.port, exc)
        if why is not None:
            return LoginError("proxy_unreachable", why)
    return mapping(exc)


def _check_open(pending: PendingLogin, now: datetime) -> None:
    if now >= pending.expires_at:
        raise LoginError("login_expired", "the login was started too long ago; start again")


def _logged_in(client: TelegramClient, result: Any) -> LoggedIn:
    if isinstance(result, types.auth.AuthorizationSignUpRequired):
        raise LoginError("phone_number_invalid", "no Telegram account uses this phone number")
    user = result.user
    return LoggedIn(client.session.save(), user.id, user.phone, user.username, user.first_name)


def _client(session: StringSession, connection: Connection) -> TelegramClient:
    return TelegramClient(
        session,
        **client_options(connection),
        # A login step is one request: every wait and failure goes back to the person.
        flood_sleep_threshold=0,
        raise_last_call_error=True,
        request_retries=0,
        connection_retries=1,
        retry_delay=0,
        receive_updates=False,
        catch_up=False,
    )


# -- importing a session -----------------------------------------------------------------------


def parse_string_session(text: str) -> ImportedSession:
    """A Telethon StringSession."""
    try:
        session = StringSession(text.strip())
    except (ValueError, binascii.Error, struct.error) as exc:
        raise LoginError("session_invalid", f"not a Telethon session string: {exc}") from exc
    if session.auth_key is None:
        raise LoginError("session_invalid", "the Telethon session string holds no auth key")
    return _checked(
        ImportedSession(session.dc_id, session.auth_key.key, session.server_address, session.port)
    )


def parse_sqlite_session(data: bytes) -> ImportedSession:
    """A Telethon `.session` file (SQLite, table `sessions`)."""
    database = sqlite3.connect(":memory:")
    try:
        database.deserialize(data)
        rows = database.execute(
            "SELECT dc_id, server_address, port, auth_key FROM sessions"
        ).fetchall()
    except sqlite3.DatabaseError as exc:
        raise LoginError("session_invalid", f"not a Telethon .session file: {exc}") from exc
    finally:
        database.close()
    usable = [row for row in rows if row[3]]
    if len(usable) != 1:
        raise LoginError(
            "session_invalid", f"the .session file holds {len(usable)} auth keys, not one"
        )
    dc_id, host, port, auth_key = usable[0]
    return _checked(ImportedSession(int(dc_id), bytes(auth_key), host, port))


# Pyrogram's session string layouts (pyrogram/storage/storage.py), by their decoded length:
# dc_id, [api_id], test_mode, auth_key, user_id, is_bot.
_PYROGRAM_FORMATS = {
    struct.calcsize(">BI?256sQ?"): ">BI?256sQ?",  # Pyrogram 2
    struct.calcsize(">B?256sQ?"): ">B?256sQ?",  # 1.x with 64-bit user ids
    struct.calcsize(">B?256sI?"): ">B?256sI?",  # 1.x
}


def parse_pyrogram_session(text: str) -> ImportedSession:
    """A Pyrogram session string; it names the data centre but not its address."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error) as exc:
        raise LoginError("session_invalid", f"not a Pyrogram session string: {exc}") from exc
    layout = _PYROGRAM_FORMATS.get(len(raw))
    if layout is None:
        raise LoginError(
            "session_invalid", f"a Pyrogram session string of {len(raw)} bytes is no known format"
        )
    fields = struct.unpack(layout, raw)
    dc_id, test_mode, auth_key = fields[0], fields[-4], fields[-3]
    if test_mode:
        raise LoginError("session_invalid", "a session of Telegram's test servers")
    if fields[-1]:
        raise LoginError("session_invalid", "a bot's session; campaigns need a user account")
    return _checked(ImportedSession(dc_id, auth_key))


def _checked(imported: ImportedSession) -> ImportedSession:
    if len(imported.auth_key) != 256:
        raise LoginError(
            "session_invalid", f"an auth key of {len(imported.auth_key)} bytes, not 256"
        )
    if not 1 <= imported.dc_id <= 5:
        raise LoginError("session_invalid", f"data centre {imported.dc_id} does not exist")
    return imported


def to_string_session(
    imported: ImportedSession, dcs: Mapping[int, tuple[str, int]] = TELEGRAM_DCS
) -> str:
    """The Telethon StringSession for imported material; `dcs` gives the address of a data
    centre the format did not name."""
    host, port = imported.host, imported.port
    if host is None or port is None:
        host, port = dcs[imported.dc_id]
    ipaddress.ip_address(host)  # StringSession stores an IP address, not a name
    session = StringSession()
    session.set_dc(imported.dc_id, host, port)
    session.auth_key = AuthKey(imported.auth_key)
    return str(session.save())


async def validate_session(session: str, connection: Connection) -> LoggedIn:
    """Connect with the session and read the account with users.getFullUser, a raw request
    that raises the exact error (get_me() would hide a 401 as None). A dead session is
    refused with the reason."""
    client = _client(StringSession(session), connection)
    try:
        await client.connect()
        full = await client(functions.users.GetFullUserRequest(types.InputUserSelf()))
    except _FAILURES as exc:
        raise await _failed(exc, client, connection, import_failure) from exc
    finally:
        await _close(client)
    user = next(u for u in full.users if u.id == full.full_user.id)
    return LoggedIn(session, user.id, user.phone, user.username, user.first_name)


def import_failure(exc: BaseException) -> LoginError:
    """The problem for what Telethon raised while checking an imported session; the health
    categories of the sender (telethon_errors) decide what is dead."""
    if isinstance(exc, errors.AuthKeyDuplicatedError):
        return LoginError(
            "session_conflict",
            "Telegram saw this session used from two places at once (AUTH_KEY_DUPLICATED) and "
            "ended it; log in afresh instead",
        )
    failure = categorize(exc)
    if isinstance(failure, AccountDead):
        if failure.kind == "banned":
            return LoginError("phone_number_banned", failure.reason)
        return LoginError("session_dead", failure.reason)
    if isinstance(exc, OSError | errors.ServerError | errors.TimedOutError):
        return LoginError("telegram_unreachable", failure.reason)
    return LoginError("login_refused", f"Telegram refused the session: {failure.reason}")
