"""The fake MTProto server against an unmodified TelegramClient: connect, RPCs, errors, updates.

These tests also pin down what Telethon itself does (calls on connect, retries of 500s, the
flood-wait memory), which the Telethon adapter relies on.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import telethon.client.users
from telethon import TelegramClient, errors, events, functions, types
from telethon.crypto import AuthKey
from telethon.errors.common import AuthKeyNotFound
from telethon.errors.rpcbaseerrors import BadRequestError, ForbiddenError
from telethon.sessions import StringSession

from dripline.fake_telegram import FakeTelegram, SentMessage

ACCOUNT = 1001
OTHER_ACCOUNT = 1002
ALICE = 2001  # reachable by username and phone
BOB = 2002  # reachable by phone only
ALICE_HASH = 777
WAIT = 5.0  # seconds; only ever hit when something is broken

Connect = Callable[..., Awaitable[Any]]


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    server.add_account(ACCOUNT, phone="+1 555 000 0000")
    server.add_account(OTHER_ACCOUNT, first_name="Other")
    server.add_user(ALICE, username="Alice", phone="+15550001", access_hash=ALICE_HASH)
    server.add_user(BOB, phone="+15550002")
    await server.start()
    yield server
    await server.stop()
    assert server.errors == []


@pytest.fixture
async def connect(telegram: FakeTelegram) -> AsyncIterator[Connect]:
    clients: list[Any] = []

    async def make(user_id: int = ACCOUNT, *, request_retries: int = 1, **options: Any) -> Any:
        client = TelegramClient(
            StringSession(telegram.session_string(user_id)),
            api_id=1,
            api_hash="x",
            flood_sleep_threshold=0,
            raise_last_call_error=options.pop("raise_last_call_error", True),
            request_retries=request_retries,
            receive_updates=options.pop("receive_updates", True),
            **options,
        )
        clients.append(client)
        await client.connect()
        return client

    yield make
    for client in clients:
        await client.disconnect()


class RecordingAsyncio:
    """Stands in for `asyncio` inside telethon.client.users: its retry sleeps become instant."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(0)

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)


@pytest.fixture
def telethon_sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordingAsyncio:
    recorder = RecordingAsyncio()
    monkeypatch.setattr(telethon.client.users, "asyncio", recorder)
    return recorder


def alice() -> Any:
    return types.InputPeerUser(ALICE, ALICE_HASH)


def send(text: str, random_id: int, peer: Any = None) -> Any:
    return functions.messages.SendMessageRequest(
        peer=peer or alice(), message=text, random_id=random_id
    )


def next_event(client: Any, builder: Any) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    async def handler(event: Any) -> None:
        if not future.done():
            future.set_result(event)

    client.add_event_handler(handler, builder)
    return future


def methods(telegram: FakeTelegram, account_id: int = ACCOUNT) -> list[str]:
    return [call.method for call in telegram.calls if call.account_id == account_id]


async def test_connects_as_the_account_with_the_calls_telethon_makes(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()

    assert client.is_connected()
    # InvokeWithLayer(InitConnection(help.getConfig)), then get_me() and _on_login().
    assert methods(telegram) == [
        "help.GetConfig",
        "users.GetUsers",
        "updates.GetState",
        "updates.GetDifference",
    ]
    assert await client.is_user_authorized()
    me = await client.get_me()
    assert (me.id, me.is_self, me.phone) == (ACCOUNT, True, "15550000000")
    state = await client(functions.updates.GetStateRequest())
    assert (state.pts, state.qts, state.seq, state.unread_count) == (1, 0, 0, 0)

    await client.disconnect()
    assert not client.is_connected()


async def test_users_get_users_answers_self_and_known_users(connect: Connect) -> None:
    client = await connect()

    users = await client(
        functions.users.GetUsersRequest(
            [types.InputUserSelf(), types.InputUser(ALICE, ALICE_HASH), types.InputUser(BOB, 1)]
        )
    )

    assert [(u.id, u.is_self) for u in users] == [(ACCOUNT, True), (ALICE, False)]


async def test_resolves_a_username(connect: Connect) -> None:
    client = await connect()

    resolved = await client(functions.contacts.ResolveUsernameRequest("alice"))

    assert resolved.peer == types.PeerUser(ALICE)
    assert [(u.id, u.access_hash) for u in resolved.users] == [(ALICE, ALICE_HASH)]
    assert (await client.get_entity("@alice")).id == ALICE
    with pytest.raises(errors.UsernameNotOccupiedError):
        await client(functions.contacts.ResolveUsernameRequest("nobody"))


async def test_imports_known_phones_only(connect: Connect) -> None:
    client = await connect()

    result = await client(
        functions.contacts.ImportContactsRequest(
            [
                types.InputPhoneContact(
                    client_id=7, phone="+1 555 0002", first_name="B", last_name=""
                ),
                types.InputPhoneContact(
                    client_id=8, phone="+15559999", first_name="?", last_name=""
                ),
            ]
        )
    )

    assert [(c.user_id, c.client_id) for c in result.imported] == [(BOB, 7)]
    assert [u.id for u in result.users] == [BOB]
    assert result.retry_contacts == []


async def test_sends_a_message_and_records_it(telegram: FakeTelegram, connect: Connect) -> None:
    client = await connect()

    first = await client(send("hello", random_id=41))
    second = await client.send_message(alice(), "again")

    assert isinstance(first, types.UpdateShortSentMessage)
    assert (first.id, first.out, first.pts, first.pts_count) == (1, True, 2, 1)
    assert abs(first.date - datetime.now(UTC)) < timedelta(seconds=5)
    assert second.id == 2
    assert telegram.sent[0] == SentMessage(ACCOUNT, ALICE, "hello", 41, 1, first.date)
    assert [s.text for s in telegram.sent] == ["hello", "again"]


async def test_a_send_can_be_answered_with_full_updates(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()
    telegram.answer_sends_with(ACCOUNT, "updates")

    answer = await client(send("hello", random_id=42))

    assert isinstance(answer, types.Updates)
    mapped, new = answer.updates
    assert isinstance(mapped, types.UpdateMessageID)
    assert (mapped.id, mapped.random_id) == (1, 42)
    assert isinstance(new, types.UpdateNewMessage)
    assert (new.message.id, new.message.message, new.message.out) == (1, "hello", True)
    assert [u.id for u in answer.users] == [ALICE]
    assert telegram.sent[0] == SentMessage(ACCOUNT, ALICE, "hello", 42, 1, new.message.date)


async def test_a_username_of_a_channel_or_group_resolves_to_the_channel(
    telegram: FakeTelegram, connect: Connect
) -> None:
    telegram.add_channel(5001, "news")
    telegram.add_channel(5002, "chatters", group=True)
    client = await connect()

    news = await client(functions.contacts.ResolveUsernameRequest("News"))
    chatters = await client(functions.contacts.ResolveUsernameRequest("chatters"))

    assert news.peer == types.PeerChannel(5001)
    assert (news.chats[0].broadcast, news.chats[0].megagroup, news.users) == (True, False, [])
    assert chatters.peer == types.PeerChannel(5002)
    assert chatters.chats[0].megagroup


async def test_containers_ordered_and_gzipped_requests_are_understood(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect(receive_updates=False)  # every request in InvokeWithoutUpdates
    long_text = "long " * 200  # over 512 bytes, so Telethon gzips it

    # Several requests at once go in one msg_container; ordered=True wraps in invokeAfterMsg.
    results = await client([send("one", 1), send(long_text, 2)], ordered=True)

    assert [r.id for r in results] == [1, 2]
    assert [s.text for s in telegram.sent] == ["one", long_text]
    with pytest.raises(errors.MessageTooLongError):
        await client(send("x" * 4097, 3))
    with pytest.raises(errors.MessageEmptyError):
        await client(send("  ", 4))


async def test_a_wrong_access_hash_is_peer_id_invalid(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()

    with pytest.raises(errors.PeerIdInvalidError):
        await client(send("hello", 1, peer=types.InputPeerUser(ALICE, ALICE_HASH + 1)))
    assert telegram.sent == []


async def test_a_repeated_random_id_raises_random_id_duplicate_after_telethons_retries(
    telegram: FakeTelegram, connect: Connect, telethon_sleeps: RecordingAsyncio
) -> None:
    client = await connect(request_retries=1)
    await client(send("hello", random_id=5))

    with pytest.raises(errors.RandomIdDuplicateError):
        await client(send("hello", random_id=5))

    # RANDOM_ID_DUPLICATE is a 500, i.e. a ServerError: Telethon sends it request_retries + 1
    # times and sleeps 2 s after every failed attempt, the last one included.
    assert methods(telegram).count("messages.SendMessage") == 3
    assert telethon_sleeps.sleeps == [2, 2]
    assert len(telegram.sent) == 1


async def test_without_raise_last_call_error_telethon_raises_a_bare_value_error(
    connect: Connect, telethon_sleeps: RecordingAsyncio
) -> None:
    client = await connect(request_retries=0, raise_last_call_error=False)
    await client(send("hello", random_id=5))

    with pytest.raises(ValueError, match="unsuccessful 1 time"):
        await client(send("hello", random_id=5))


async def test_history_lists_both_directions_newest_first(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()
    sent = await client(send("hello", random_id=1))
    reply_id = await telegram.push_reply(ACCOUNT, ALICE, "hi there")
    await telegram.push_reply(ACCOUNT, BOB, "someone else")

    history = await client(
        functions.messages.GetHistoryRequest(
            peer=alice(),
            offset_id=0,
            offset_date=None,
            add_offset=0,
            limit=10,
            max_id=0,
            min_id=0,
            hash=0,
        )
    )
    messages = await client.get_messages(alice(), limit=10)

    assert [(m.id, m.out, m.message) for m in history.messages] == [
        (reply_id, False, "hi there"),
        (sent.id, True, "hello"),
    ]
    assert [(m.id, m.sender_id) for m in messages] == [(reply_id, ALICE), (sent.id, ACCOUNT)]


@pytest.mark.parametrize(
    ("error", "code", "expected"),
    [
        ("FLOOD_WAIT_42", 420, errors.FloodWaitError),
        ("USER_PRIVACY_RESTRICTED", 403, errors.UserPrivacyRestrictedError),
        ("PEER_FLOOD", 400, errors.PeerFloodError),
        ("AUTH_KEY_UNREGISTERED", 401, errors.AuthKeyUnregisteredError),
        ("USER_DEACTIVATED_BAN", 401, errors.UserDeactivatedBanError),
        ("PEER_ID_INVALID", 400, errors.PeerIdInvalidError),
        # Not in Telethon's error list: it falls back to the class for the code.
        ("PRIVACY_PREMIUM_REQUIRED", 403, ForbiddenError),
    ],
)
async def test_scripted_errors_surface_as_telethons_classes(
    telegram: FakeTelegram, connect: Connect, error: str, code: int, expected: type
) -> None:
    client = await connect()
    telegram.fail("messages.SendMessage", error, code)

    with pytest.raises(expected) as raised:
        await client(send("hello", random_id=1))

    assert type(raised.value) is expected
    assert isinstance(raised.value, errors.RPCError)
    assert raised.value.code == code
    assert telegram.sent == []


@pytest.mark.parametrize(
    "request_",
    [
        functions.updates.GetStateRequest(),
        functions.contacts.ResolveUsernameRequest("alice"),
        functions.contacts.ImportContactsRequest([]),
        functions.users.GetUsersRequest([types.InputUserSelf()]),
    ],
    ids=lambda r: type(r).__name__,
)
async def test_any_rpc_can_be_scripted_to_fail(
    telegram: FakeTelegram, connect: Connect, request_: Any
) -> None:
    client = await connect()
    method = type(request_).__module__.rsplit(".", 1)[-1] + "." + type(request_).__name__
    telegram.fail(method.removesuffix("Request"), "USER_DEACTIVATED_BAN", 401)

    with pytest.raises(errors.UserDeactivatedBanError):
        await client(request_)
    await client(request_)  # only once by default


async def test_flood_wait_carries_its_seconds_and_telethon_remembers_it(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()
    telegram.fail("messages.SendMessage", "FLOOD_WAIT_42", 420)

    with pytest.raises(errors.FloodWaitError) as raised:
        await client(send("hello", random_id=1))
    assert raised.value.seconds == 42

    # Telethon refuses the same request type until the wait is over, without calling Telegram.
    with pytest.raises(errors.FloodWaitError):
        await client(send("hello", random_id=2))
    assert methods(telegram).count("messages.SendMessage") == 1


async def test_failures_count_down_and_can_target_one_account(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()
    other = await connect(OTHER_ACCOUNT)
    telegram.fail("messages.SendMessage", "PEER_FLOOD", 400, times=2, user_id=ACCOUNT)

    assert (await other(send("from the other account", random_id=1))).id == 1
    for random_id in (1, 2):
        with pytest.raises(errors.PeerFloodError):
            await client(send("hello", random_id=random_id))
    assert (await client(send("hello", random_id=3))).id == 1


async def test_revoked_account_fails_every_call(telegram: FakeTelegram, connect: Connect) -> None:
    client = await connect()
    telegram.revoke(ACCOUNT)

    with pytest.raises(errors.AuthKeyUnregisteredError):
        await client(send("hello", random_id=1))
    with pytest.raises(errors.AuthKeyUnregisteredError):
        await client(functions.updates.GetStateRequest())
    assert await client.get_me() is None  # Telethon turns 401s in get_me() into None

    # The same session still connects (help.getConfig needs no login) but is not authorised.
    again = TelegramClient(StringSession(client.session.save()), api_id=1, api_hash="x")
    await again.connect()
    try:
        assert not await again.is_user_authorized()
    finally:
        await again.disconnect()
    # Another login of the account (a new key) works: revoking ends sessions, not the account.
    fresh = await connect()
    assert await fresh.is_user_authorized()


async def test_revoke_with_another_error(telegram: FakeTelegram, connect: Connect) -> None:
    client = await connect()
    telegram.revoke(ACCOUNT, "USER_DEACTIVATED_BAN", 401)

    with pytest.raises(errors.UserDeactivatedBanError):
        await client(send("hello", random_id=1))


async def test_an_unknown_auth_key_is_auth_key_not_found(telegram: FakeTelegram) -> None:
    session = StringSession()
    session.set_dc(2, "127.0.0.1", telegram.port)
    session.auth_key = AuthKey(bytes(256))
    client = TelegramClient(session, api_id=1, api_hash="x", connection_retries=0)

    with pytest.raises(AuthKeyNotFound):
        await asyncio.wait_for(client.connect(), WAIT)
    # Telethon drops the connection itself and reports why on `disconnected` too.
    with pytest.raises(AuthKeyNotFound):
        await asyncio.wait_for(client.disconnected, WAIT)
    await client.disconnect()


async def test_unknown_methods_say_so(connect: Connect) -> None:
    client = await connect()

    with pytest.raises(BadRequestError, match="METHOD_NOT_IMPLEMENTED_IN_FAKE"):
        await client(functions.account.GetAuthorizationsRequest())


def test_fail_rejects_a_misspelt_method() -> None:
    with pytest.raises(ValueError, match="not a TL method"):
        FakeTelegram().fail("messages.sendMessage", "PEER_FLOOD", 400)


async def test_push_reply_fires_new_message(telegram: FakeTelegram, connect: Connect) -> None:
    client = await connect()
    arrived = next_event(client, events.NewMessage(incoming=True))

    message_id = await telegram.push_reply(ACCOUNT, ALICE, "hi there")
    event = await asyncio.wait_for(arrived, WAIT)

    assert event.is_private
    assert event.sender_id == ALICE
    assert event.chat_id == ALICE
    assert (event.message.id, event.text, event.message.out) == (message_id, "hi there", False)
    assert abs(event.date - datetime.now(UTC)) < timedelta(seconds=5)
    assert (await event.get_sender()).id == ALICE  # the user came with the update


async def test_push_read_fires_message_read(telegram: FakeTelegram, connect: Connect) -> None:
    client = await connect()
    sent = await client(send("hello", random_id=1))
    read = next_event(client, events.MessageRead())

    await telegram.push_read(ACCOUNT, ALICE, sent.id)
    event = await asyncio.wait_for(read, WAIT)

    assert (event.max_id, event.outbox, event.chat_id) == (sent.id, True, ALICE)


async def test_a_stream_of_updates_never_makes_telethon_see_a_gap(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()
    for round_ in range(3):
        sent = await client(send(f"hello {round_}", random_id=round_))
        read = next_event(client, events.MessageRead())
        await telegram.push_read(ACCOUNT, ALICE, sent.id)
        assert (await asyncio.wait_for(read, WAIT)).max_id == sent.id
        replied = next_event(client, events.NewMessage(incoming=True))
        reply_id = await telegram.push_reply(ACCOUNT, ALICE, f"reply {round_}")
        assert (await asyncio.wait_for(replied, WAIT)).message.id == reply_id

    assert methods(telegram).count("updates.GetDifference") == 1  # the one at login


async def test_another_session_of_the_account_sees_the_sent_message(
    telegram: FakeTelegram, connect: Connect
) -> None:
    sender = await connect()
    watcher = await connect()
    outgoing = next_event(watcher, events.NewMessage(outgoing=True))

    sent = await sender(send("hello", random_id=1))
    event = await asyncio.wait_for(outgoing, WAIT)

    assert (event.message.id, event.text, event.chat_id) == (sent.id, "hello", ALICE)


async def test_updates_missed_while_offline_come_back_through_get_difference(
    telegram: FakeTelegram, connect: Connect
) -> None:
    client = await connect()
    await client.disconnect()
    missed_id = await telegram.push_reply(ACCOUNT, ALICE, "while you were away")
    await client.connect()  # keeps its MessageBox, so no new GetState
    texts: list[str] = []
    both = asyncio.get_running_loop().create_future()

    async def on_message(event: Any) -> None:
        texts.append(event.text)
        if len(texts) == 2:
            both.set_result(None)

    client.add_event_handler(on_message, events.NewMessage(incoming=True))
    live_id = await telegram.push_reply(ACCOUNT, ALICE, "now")
    await asyncio.wait_for(both, WAIT)

    assert sorted(texts) == ["now", "while you were away"]
    assert missed_id < live_id
    assert methods(telegram).count("updates.GetDifference") == 2


async def test_stop_closes_live_connections(telegram: FakeTelegram) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", telegram.port)

    await telegram.stop()

    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()


async def test_a_protocol_error_is_logged_and_closes_the_connection(
    telegram: FakeTelegram, caplog: pytest.LogCaptureFixture
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", telegram.port)

    with caplog.at_level(logging.WARNING, logger="dripline.fake_telegram.mtproto"):
        writer.write(struct.pack("<ii", 5, 0))  # an impossible TcpFull length
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()

    assert "bad TcpFull length 5" in caplog.text
