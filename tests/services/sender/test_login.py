"""The sender's login core: the mapping of Telegram's refusals and the session formats (pure,
table-driven), and the phone login and session import against the fake MTProto server through
an unmodified TelegramClient."""

from __future__ import annotations

import base64
import sqlite3
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from telethon import errors
from telethon.crypto import AuthKey
from telethon.errors.common import AuthKeyNotFound
from telethon.sessions import SQLiteSession, StringSession

from dripline.fake_telegram import FakeTelegram
from services.sender.login import (
    ApiCredentials,
    Connection,
    DeviceIdentity,
    Endpoint,
    ImportedSession,
    LoggedIn,
    LoginError,
    PendingLogin,
    PhoneLogin,
    Proxy,
    import_failure,
    keeps_in_a_string_session,
    login_failure,
    parse_pyrogram_session,
    parse_sqlite_session,
    parse_string_session,
    to_string_session,
    validate_session,
)

ACCOUNT, WITH_PASSWORD, BANNED = 1001, 1002, 1003
PHONE, PASSWORD_PHONE, BANNED_PHONE = "+15550100", "+15550200", "+15550300"
PASSWORD = "hunter2 but longer"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
KEY = bytes(range(256))
DEVICE = DeviceIdentity("Pixel 8", "Android 14", "11.4.2", "en", "en-GB")
CONNECTION = Connection(ApiCredentials(12345, "0123456789abcdef"), DEVICE)


def rpc(cls: type[Exception], **kwargs: Any) -> Exception:
    """Telethon's error as it raises it (the request is only used in the message)."""
    return cls(request=None, **kwargs)  # type: ignore[call-arg]


# -- the mapping (pure) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "retry_after"),
    [
        (rpc(errors.PhoneNumberInvalidError), "phone_number_invalid", None),
        (rpc(errors.PhoneNumberUnoccupiedError), "phone_number_invalid", None),
        (rpc(errors.PhoneCodeInvalidError), "phone_code_invalid", None),
        (rpc(errors.PhoneCodeEmptyError), "phone_code_invalid", None),
        (rpc(errors.PhoneCodeExpiredError), "phone_code_expired", None),
        (rpc(errors.PasswordHashInvalidError), "password_invalid", None),
        (rpc(errors.FloodWaitError, capture=42), "flood_wait", 42),
        (rpc(errors.PhoneNumberFloodError), "flood_wait", None),
        (rpc(errors.PhoneNumberBannedError), "phone_number_banned", None),
        (rpc(errors.UserDeactivatedBanError), "phone_number_banned", None),
        (rpc(errors.PhoneCodeHashEmptyError), "login_expired", None),
        (rpc(errors.SrpIdInvalidError), "login_expired", None),
        (rpc(errors.AuthKeyUnregisteredError), "login_expired", None),
        (AuthKeyNotFound(), "login_expired", None),
        (ConnectionRefusedError("refused"), "telegram_unreachable", None),
        (rpc(errors.RpcCallFailError), "telegram_unreachable", None),
        (rpc(errors.ApiIdInvalidError), "login_refused", None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_login_failures_map_to_specific_codes(
    exc: Exception, code: str, retry_after: int | None
) -> None:
    failure = login_failure(exc)

    assert (failure.code, failure.retry_after) == (code, retry_after)
    assert type(exc).__name__ in failure.detail or code == "login_refused"


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (rpc(errors.AuthKeyUnregisteredError), "session_dead"),
        (rpc(errors.SessionRevokedError), "session_dead"),
        (AuthKeyNotFound(), "session_dead"),
        (rpc(errors.UserDeactivatedBanError), "phone_number_banned"),
        (rpc(errors.AuthKeyDuplicatedError), "session_conflict"),
        (ConnectionResetError("reset"), "telegram_unreachable"),
        (rpc(errors.FrozenMethodInvalidError), "login_refused"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_import_failures_map_to_specific_codes(exc: Exception, code: str) -> None:
    assert import_failure(exc).code == code


def test_a_proxy_becomes_telethons_python_socks_dict_without_showing_its_password() -> None:
    proxy = Proxy("socks5", "10.0.0.7", 1080, "user", "secret")

    assert proxy.client_options() == {
        "proxy": {
            "proxy_type": "socks5",
            "addr": "10.0.0.7",
            "port": 1080,
            "username": "user",
            "password": "secret",
            "rdns": True,
        }
    }
    assert "secret" not in repr(proxy)


def test_a_pending_login_round_trips_through_json_and_hides_its_session() -> None:
    pending = PendingLogin("+1555", "abc", "1SESSION", NOW, password_needed=True)

    assert PendingLogin.from_json(pending.to_json()) == pending
    assert "1SESSION" not in repr(pending)


# -- session formats (pure) --------------------------------------------------------------------


def _string_session(dc_id: int, host: str, port: int, key: bytes) -> str:
    session = StringSession()
    session.set_dc(dc_id, host, port)
    session.auth_key = AuthKey(key)
    return str(session.save())


def _pyrogram(layout: str, *fields: Any) -> str:
    return base64.urlsafe_b64encode(struct.pack(layout, *fields)).decode().rstrip("=")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_pyrogram(">BI?256sQ?", 4, 12345, False, KEY, 777, False), ImportedSession(4, KEY)),
        (_pyrogram(">B?256sQ?", 2, False, KEY, 2**40, False), ImportedSession(2, KEY)),
        (_pyrogram(">B?256sI?", 1, False, KEY, 777, False), ImportedSession(1, KEY)),
    ],
    ids=["pyrogram 2", "pyrogram 1 with 64-bit ids", "pyrogram 1"],
)
def test_pyrogram_session_strings_of_each_layout(text: str, expected: ImportedSession) -> None:
    assert parse_pyrogram_session(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("not base64 at all!", "no known format"),
        (_pyrogram(">BI?256sQ?", 2, 1, True, KEY, 777, False), "test servers"),
        (_pyrogram(">BI?256sQ?", 2, 1, False, KEY, 777, True), "bot"),
        (_pyrogram(">BI?256sQ?", 9, 1, False, KEY, 777, False), "data centre 9"),
    ],
    ids=["garbage", "test mode", "bot", "unknown dc"],
)
def test_unusable_pyrogram_strings_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(LoginError, match=why) as raised:
        parse_pyrogram_session(text)
    assert raised.value.code == "session_invalid"


def test_a_new_key_of_255_bytes_does_not_survive_a_string_session_so_a_login_remakes_it() -> None:
    """Why PhoneLogin.start remakes a short key: read back, it is another key (another id)."""
    short = AuthKey(b"\x01" + bytes(range(254)))
    session = StringSession()
    session.set_dc(2, "127.0.0.1", 443)
    session.auth_key = short
    back = StringSession(session.save()).auth_key
    assert back is not None
    assert back.key_id != short.key_id
    assert not keeps_in_a_string_session(short.key)
    whole = AuthKey(b"\x01" + bytes(range(255)))
    session.auth_key = whole
    assert StringSession(session.save()).auth_key.key_id == whole.key_id
    assert keeps_in_a_string_session(whole.key)
    assert not keeps_in_a_string_session(None)


def test_a_telethon_string_session_keeps_its_address() -> None:
    text = _string_session(4, "149.154.167.91", 443, KEY)

    assert parse_string_session(text) == ImportedSession(4, KEY, "149.154.167.91", 443)


@pytest.mark.parametrize("text", ["", "1abc", "garbage"], ids=["empty", "short", "garbage"])
def test_a_broken_telethon_string_session_is_invalid(text: str) -> None:
    with pytest.raises(LoginError) as raised:
        parse_string_session(text)
    assert raised.value.code == "session_invalid"


def test_a_telethon_sqlite_session_file(tmp_path: Path) -> None:
    session = SQLiteSession(str(tmp_path / "account"))
    session.set_dc(3, "149.154.175.100", 443)
    session.auth_key = AuthKey(KEY)
    session.save()
    session.close()

    imported = parse_sqlite_session((tmp_path / "account.session").read_bytes())

    assert imported == ImportedSession(3, KEY, "149.154.175.100", 443)


def test_a_file_that_is_not_a_session_is_invalid(tmp_path: Path) -> None:
    empty = tmp_path / "empty.session"
    sqlite3.connect(empty).execute("CREATE TABLE other (x)").connection.commit()

    for data in (b"not sqlite", empty.read_bytes()):
        with pytest.raises(LoginError) as raised:
            parse_sqlite_session(data)
        assert raised.value.code == "session_invalid"


def test_an_imported_session_becomes_a_string_session_at_its_dc() -> None:
    text = to_string_session(ImportedSession(4, KEY))

    assert parse_string_session(text) == ImportedSession(4, KEY, "149.154.167.91", 443)
    own = to_string_session(ImportedSession(2, KEY), {2: ("127.0.0.1", 4444)})
    assert parse_string_session(own) == ImportedSession(2, KEY, "127.0.0.1", 4444)


# -- against the fake server -------------------------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    server.add_account(ACCOUNT, phone=PHONE, first_name="Ada")
    server.add_account(WITH_PASSWORD, phone=PASSWORD_PHONE, password=PASSWORD)
    server.add_account(BANNED, phone=BANNED_PHONE)
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
def login(telegram: FakeTelegram) -> PhoneLogin:
    return PhoneLogin(CONNECTION, endpoint=Endpoint(2, "127.0.0.1", telegram.port))


async def test_a_phone_login_with_a_code_yields_a_working_session(
    telegram: FakeTelegram, login: PhoneLogin
) -> None:
    pending = await login.start(PHONE, NOW)
    # What the API would keep between requests, and read back after a restart.
    stored = PendingLogin.from_json(pending.to_json())

    done = await login.submit_code(stored, telegram.last_code(PHONE), NOW)

    assert isinstance(done, LoggedIn)
    assert (done.user_id, done.phone, done.first_name) == (ACCOUNT, "15550100", "Ada")
    assert pending.expires_at == NOW + timedelta(minutes=15)
    checked = await validate_session(done.session, CONNECTION)
    assert checked.user_id == ACCOUNT


async def test_a_phone_login_with_a_2fa_password(telegram: FakeTelegram, login: PhoneLogin) -> None:
    pending = await login.start(PASSWORD_PHONE, NOW)

    waiting = await login.submit_code(pending, telegram.last_code(PASSWORD_PHONE), NOW)
    assert isinstance(waiting, PendingLogin)
    assert waiting.password_needed
    with pytest.raises(LoginError) as wrong:
        await login.submit_password(waiting, "wrong", NOW)
    done = await login.submit_password(waiting, PASSWORD, NOW)

    assert wrong.value.code == "password_invalid"
    assert done.user_id == WITH_PASSWORD
    assert (await validate_session(done.session, CONNECTION)).user_id == WITH_PASSWORD


async def test_each_refusal_of_a_phone_login_has_its_code(
    telegram: FakeTelegram, login: PhoneLogin
) -> None:
    telegram.ban(BANNED)

    async def code_of(step: Any) -> tuple[str, int | None]:
        with pytest.raises(LoginError) as raised:
            await step
        return raised.value.code, raised.value.retry_after

    assert await code_of(login.start("+19990000000", NOW)) == ("phone_number_invalid", None)
    assert await code_of(login.start(BANNED_PHONE, NOW)) == ("phone_number_banned", None)
    telegram.fail("auth.SendCode", "FLOOD_WAIT_120", 420)
    assert await code_of(login.start(PHONE, NOW)) == ("flood_wait", 120)

    pending = await login.start(PHONE, NOW)
    assert await code_of(login.submit_code(pending, "00000x", NOW)) == (
        "phone_code_invalid",
        None,
    )
    late = NOW + timedelta(minutes=15)
    assert await code_of(login.submit_code(pending, "x", late)) == ("login_expired", None)
    telegram.expire_codes()
    assert await code_of(login.submit_code(pending, telegram.last_code(PHONE), NOW)) == (
        "phone_code_expired",
        None,
    )


async def test_a_pending_login_whose_key_is_gone_has_expired(
    telegram: FakeTelegram, login: PhoneLogin
) -> None:
    pending = await login.start(PHONE, NOW)
    other_server = FakeTelegram()  # a server that never saw this login's key
    await other_server.start()
    try:
        moved = PhoneLogin(CONNECTION, endpoint=Endpoint(2, "127.0.0.1", other_server.port))
        with pytest.raises(LoginError) as raised:
            await moved.submit_code(
                _moved(pending, other_server.port), telegram.last_code(PHONE), NOW
            )
    finally:
        await other_server.stop()

    assert raised.value.code == "login_expired"


def _moved(pending: PendingLogin, port: int) -> PendingLogin:
    imported = parse_string_session(pending.session)
    text = to_string_session(
        ImportedSession(imported.dc_id, imported.auth_key), {imported.dc_id: ("127.0.0.1", port)}
    )
    return PendingLogin(pending.phone, pending.phone_code_hash, text, pending.expires_at)


async def test_imports_of_each_format_are_validated_against_telegram(
    telegram: FakeTelegram, tmp_path: Path
) -> None:
    live = parse_string_session(telegram.session_string(ACCOUNT))
    fake_dc = {live.dc_id: ("127.0.0.1", telegram.port)}
    pyrogram = _pyrogram(">BI?256sQ?", live.dc_id, 1, False, live.auth_key, ACCOUNT, False)
    sqlite_session = SQLiteSession(str(tmp_path / "live"))
    sqlite_session.set_dc(live.dc_id, "127.0.0.1", telegram.port)
    sqlite_session.auth_key = AuthKey(live.auth_key)
    sqlite_session.save()
    sqlite_session.close()

    for imported in (
        live,
        parse_pyrogram_session(pyrogram),
        parse_sqlite_session((tmp_path / "live.session").read_bytes()),
    ):
        checked = await validate_session(to_string_session(imported, fake_dc), CONNECTION)
        assert checked.user_id == ACCOUNT


async def test_a_dead_imported_session_is_refused_with_the_reason(
    telegram: FakeTelegram,
) -> None:
    revoked = telegram.session_string(ACCOUNT)
    telegram.revoke(ACCOUNT)
    banned = telegram.session_string(BANNED)
    telegram.ban(BANNED)
    unknown = to_string_session(ImportedSession(2, KEY), {2: ("127.0.0.1", telegram.port)})

    refusals = []
    for session in (revoked, banned, unknown):
        with pytest.raises(LoginError) as raised:
            await validate_session(session, CONNECTION)
        refusals.append((raised.value.code, raised.value.detail.split(":")[0]))

    assert refusals == [
        ("session_dead", "AuthKeyUnregisteredError"),
        ("phone_number_banned", "UserDeactivatedBanError"),
        ("session_dead", "AuthKeyNotFound"),
    ]
