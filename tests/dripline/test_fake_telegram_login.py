"""The fake MTProto server's login, account checks and faults, driven by an unmodified
TelegramClient: an empty session creates its auth key with the server (the real exchange, our
test RSA key), logs in with a code and a 2FA password (real SRP), and every refusal arrives as
the exception class Telethon builds for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from telethon import TelegramClient, errors, events, functions, types
from telethon import password as pw
from telethon.sessions import StringSession

from dripline.fake_telegram import SPAMBOT_FREE, SPAMBOT_ID, FakeTelegram, spambot_limited

ACCOUNT, WITH_PASSWORD, BANNED, ALICE = 1001, 1002, 1003, 2001
PHONE, PASSWORD_PHONE, BANNED_PHONE = "+15550100", "+15550200", "+15550300"
PASSWORD = "correct horse battery staple"
WAIT = 5.0

Client = Callable[..., Awaitable[Any]]


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    server.add_account(ACCOUNT, phone=PHONE)
    server.add_account(WITH_PASSWORD, phone=PASSWORD_PHONE, password=PASSWORD)
    server.add_account(BANNED, phone=BANNED_PHONE)
    server.ban(BANNED)
    server.add_user(ALICE, username="alice")
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def new_client(telegram: FakeTelegram) -> AsyncIterator[Client]:
    """A TelegramClient on an empty session (or the one given) pointed at the fake."""
    clients: list[Any] = []

    async def make(session: str | None = None, **options: Any) -> Any:
        if session is None:
            string_session = StringSession()
            string_session.set_dc(2, "127.0.0.1", telegram.port)
        else:
            string_session = StringSession(session)
        client = TelegramClient(
            string_session, api_id=1, api_hash="x", flood_sleep_threshold=0, **options
        )
        clients.append(client)
        await asyncio.wait_for(client.connect(), WAIT)
        return client

    yield make
    for client in clients:
        await client.disconnect()


async def logged_in(new_client: Client, telegram: FakeTelegram, phone: str = PHONE) -> Any:
    client = await new_client()
    await client.send_code_request(phone)
    await client.sign_in(phone, telegram.last_code(phone))
    return client


# -- the auth-key exchange --------------------------------------------------------------------


async def test_an_empty_session_makes_its_auth_key_with_the_server(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await new_client()

    assert client.session.auth_key is not None
    assert len(client.session.auth_key.key) in (255, 256)
    assert not await client.is_user_authorized()
    # The key works (its messages decrypt) but belongs to nobody: Telegram answers 401.
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await client(functions.updates.GetStateRequest())
    assert telegram.calls[0].method == "help.GetConfig"
    assert {call.account_id for call in telegram.calls} == {None}


async def test_two_empty_sessions_get_different_keys(new_client: Client) -> None:
    first, second = await new_client(), await new_client()

    assert first.session.auth_key.key != second.session.auth_key.key


# -- logging in -------------------------------------------------------------------------------


async def test_logs_in_with_a_code_and_the_session_keeps_the_login(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await new_client()

    sent = await client.send_code_request(PHONE)
    user = await client.sign_in(PHONE, telegram.last_code(PHONE))

    assert isinstance(sent.type, types.auth.SentCodeTypeApp)
    assert (user.id, user.is_self) == (ACCOUNT, True)
    assert await client.is_user_authorized()
    # The saved session is the login: another client on it is the account at once.
    again = await new_client(client.session.save())
    assert (await again.get_me()).id == ACCOUNT
    alice = await again(functions.contacts.ResolveUsernameRequest("alice"))
    await again.send_message(alice.users[0], "hello")
    assert [(s.account_id, s.text) for s in telegram.sent] == [(ACCOUNT, "hello")]


async def test_logs_in_with_a_code_and_the_2fa_password_over_srp(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await new_client()
    await client.send_code_request(PASSWORD_PHONE)

    with pytest.raises(errors.SessionPasswordNeededError):
        await client.sign_in(PASSWORD_PHONE, telegram.last_code(PASSWORD_PHONE))
    assert not await client.is_user_authorized()
    with pytest.raises(errors.PasswordHashInvalidError):
        await client.sign_in(password="wrong horse")
    user = await client.sign_in(password=PASSWORD)

    assert user.id == WITH_PASSWORD
    assert (await client.get_me()).id == WITH_PASSWORD


async def test_an_answer_to_an_old_password_challenge_is_srp_id_invalid(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await new_client()
    await client.send_code_request(PASSWORD_PHONE)
    with pytest.raises(errors.SessionPasswordNeededError):
        await client.sign_in(PASSWORD_PHONE, telegram.last_code(PASSWORD_PHONE))
    old = await client(functions.account.GetPasswordRequest())
    await client(functions.account.GetPasswordRequest())  # a new challenge replaces it

    with pytest.raises(errors.SrpIdInvalidError):
        await client(functions.auth.CheckPasswordRequest(pw.compute_check(old, PASSWORD)))


async def test_a_code_is_only_good_on_the_key_that_asked_for_it(
    telegram: FakeTelegram, new_client: Client
) -> None:
    asking, other = await new_client(), await new_client()
    sent = await asking.send_code_request(PHONE)

    with pytest.raises(errors.PhoneCodeExpiredError):
        await other(
            functions.auth.SignInRequest(PHONE, sent.phone_code_hash, telegram.last_code(PHONE))
        )
    assert (await asking.sign_in(PHONE, telegram.last_code(PHONE))).id == ACCOUNT


def _flood(telegram: FakeTelegram) -> None:
    telegram.fail("auth.SendCode", "FLOOD_WAIT_30", 420)


def _expire(telegram: FakeTelegram) -> None:
    telegram.expire_codes()


@pytest.mark.parametrize(
    ("phone", "script", "code", "expected"),
    [
        ("+19999999999", None, None, errors.PhoneNumberInvalidError),
        (BANNED_PHONE, None, None, errors.PhoneNumberBannedError),
        (PHONE, _flood, None, errors.FloodWaitError),
        (PHONE, None, "00000x", errors.PhoneCodeInvalidError),
        (PHONE, _expire, "right", errors.PhoneCodeExpiredError),
    ],
    ids=["unknown phone", "banned", "flood wait", "wrong code", "expired code"],
)
async def test_each_login_refusal_is_telethons_class(
    telegram: FakeTelegram,
    new_client: Client,
    phone: str,
    script: Callable[[FakeTelegram], None] | None,
    code: str | None,
    expected: type[Exception],
) -> None:
    client = await new_client()
    if code is None:
        if script is not None:
            script(telegram)
        with pytest.raises(expected) as raised:
            await client.send_code_request(phone)
    else:
        await client.send_code_request(phone)
        if script is not None:
            script(telegram)
        with pytest.raises(expected) as raised:
            await client.sign_in(phone, telegram.last_code(phone) if code == "right" else code)

    assert type(raised.value) is expected
    if isinstance(raised.value, errors.FloodWaitError):
        assert raised.value.seconds == 30
    assert not await client.is_user_authorized()


async def test_a_banned_account_is_deactivated_on_its_old_session(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await new_client(telegram.session_string(BANNED))

    with pytest.raises(errors.UserDeactivatedBanError):
        await client(functions.users.GetFullUserRequest(types.InputUserSelf()))


async def test_get_full_user_reads_the_account(telegram: FakeTelegram, new_client: Client) -> None:
    client = await logged_in(new_client, telegram)

    full = await client(functions.users.GetFullUserRequest(types.InputUserSelf()))

    assert full.full_user.id == ACCOUNT
    assert [(u.id, u.is_self, u.phone) for u in full.users] == [(ACCOUNT, True, "15550100")]


# -- freeze and @SpamBot ----------------------------------------------------------------------


def _app_config(config: Any) -> dict[str, Any]:
    return {item.key: item.value.value for item in config.config.value}


async def test_app_config_carries_the_freeze_fields_of_a_frozen_account(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await logged_in(new_client, telegram)
    alice = (await client(functions.contacts.ResolveUsernameRequest("alice"))).users[0]
    assert "freeze_until_date" not in _app_config(
        await client(functions.help.GetAppConfigRequest(hash=0))
    )
    since = datetime(2026, 11, 1, tzinfo=UTC)
    until = since + timedelta(days=30)

    telegram.freeze(ACCOUNT, since=since, until=until, appeal_url="https://t.me/spambot?start=x")
    config = _app_config(await client(functions.help.GetAppConfigRequest(hash=0)))

    assert config["freeze_since_date"] == since.timestamp()
    assert config["freeze_until_date"] == until.timestamp()
    assert config["freeze_appeal_url"] == "https://t.me/spambot?start=x"
    with pytest.raises(errors.FrozenMethodInvalidError):
        await client.send_message(alice, "hello")
    telegram.unfreeze(ACCOUNT)
    await client.send_message(alice, "hello")


async def _ask_spambot(client: Any) -> str:
    resolved = await client(functions.contacts.ResolveUsernameRequest("SpamBot"))
    bot = resolved.users[0]
    assert (bot.id, bot.bot) == (SPAMBOT_ID, True)
    answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_answer(event: Any) -> None:
        if event.sender_id == SPAMBOT_ID and not answered.done():
            answered.set_result(event.text)

    client.add_event_handler(on_answer, events.NewMessage(incoming=True))
    await client.send_message(bot, "/start")
    return await asyncio.wait_for(answered, WAIT)


@pytest.mark.parametrize(
    "answer",
    [SPAMBOT_FREE, spambot_limited(datetime(2026, 12, 10, 13, 51, tzinfo=UTC)), spambot_limited()],
    ids=["free", "limited until a date", "limited"],
)
async def test_spambot_answers_start_as_scripted(
    telegram: FakeTelegram, new_client: Client, answer: str
) -> None:
    client = await logged_in(new_client, telegram)
    telegram.spambot_says(ACCOUNT, answer)

    assert await _ask_spambot(client) == answer
    history = await client.get_messages(SPAMBOT_ID, limit=2)
    assert [(m.out, m.text) for m in history] == [(False, answer), (True, "/start")]


def test_the_limited_answer_names_its_release_date() -> None:
    until = datetime(2026, 12, 10, 13, 51, tzinfo=UTC)

    assert spambot_limited(until).endswith("released on 10 Dec 2026, 13:51 UTC.")
    assert "released" not in spambot_limited()


# -- drops and slow answers -------------------------------------------------------------------


async def test_dropped_connections_are_reconnected_by_telethon(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await logged_in(new_client, telegram)

    assert telegram.drop_connections(ACCOUNT) == 1
    state = await asyncio.wait_for(client(functions.updates.GetStateRequest()), WAIT)

    assert state.pts >= 1
    assert telegram.drop_connections(ACCOUNT) == 1  # a new connection, of the same key


async def test_a_drop_before_a_send_is_resent_and_made_once(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await logged_in(new_client, telegram)
    alice = (await client(functions.contacts.ResolveUsernameRequest("alice"))).users[0]
    telegram.drop("messages.SendMessage", when="before")

    sent = await asyncio.wait_for(
        client(functions.messages.SendMessageRequest(alice, "hello", random_id=7)), WAIT
    )

    assert sent.id == 1
    assert [(s.text, s.random_id) for s in telegram.sent] == [("hello", 7)]
    # The dropped call never reached the handler; the one handled is Telethon's resend.
    methods = [c.method for c in telegram.calls if c.account_id == ACCOUNT]
    assert methods.count("messages.SendMessage") == 1


async def test_a_drop_after_a_send_loses_the_answer_not_the_message(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await new_client(
        telegram.session_string(ACCOUNT), request_retries=0, raise_last_call_error=True
    )
    alice = (await client(functions.contacts.ResolveUsernameRequest("alice"))).users[0]
    telegram.drop("messages.SendMessage", when="after")

    # Telethon resends the same request (same random_id) on the new connection: Telegram
    # knows that random_id, so the message is not made twice.
    with pytest.raises(errors.RandomIdDuplicateError):
        await asyncio.wait_for(
            client(functions.messages.SendMessageRequest(alice, "hello", random_id=7)), WAIT
        )

    assert [(s.text, s.random_id) for s in telegram.sent] == [("hello", 7)]


async def test_a_slow_answer_does_not_hold_up_the_others(
    telegram: FakeTelegram, new_client: Client
) -> None:
    client = await logged_in(new_client, telegram)
    telegram.delay("updates.GetState", 0.6)
    finished: list[str] = []

    async def timed(name: str, request: Any) -> float:
        started = time.monotonic()
        await client(request)
        finished.append(name)
        return time.monotonic() - started

    slow, fast = await asyncio.wait_for(
        asyncio.gather(
            timed("slow", functions.updates.GetStateRequest()),
            timed("fast", functions.users.GetUsersRequest([types.InputUserSelf()])),
        ),
        WAIT,
    )

    assert finished == ["fast", "slow"]
    assert slow >= 0.6 > fast


async def test_a_slow_answer_can_end_in_a_drop(telegram: FakeTelegram, new_client: Client) -> None:
    client = await logged_in(new_client, telegram)
    telegram.delay("updates.GetState", 0.2, then_drop="before")

    # Telethon notices the closed connection, reconnects and asks again.
    state = await asyncio.wait_for(client(functions.updates.GetStateRequest()), WAIT)

    assert state.pts >= 1
    methods = [c.method for c in telegram.calls if c.account_id == ACCOUNT]
    assert methods.count("updates.GetState") >= 2  # _on_login's, and the resent one


def test_faults_reject_a_misspelt_method_and_a_bad_delay() -> None:
    telegram = FakeTelegram()
    with pytest.raises(ValueError, match="not a TL method"):
        telegram.drop("messages.sendMessage")
    with pytest.raises(ValueError, match="positive"):
        telegram.delay("messages.SendMessage", 0)
