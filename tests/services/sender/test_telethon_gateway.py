"""The Telethon adapter against a local MTProto server (dripline/fake_telegram): an unmodified
TelegramClient, so every failure below is the exception class Telethon itself raises."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from dripline.fake_telegram import FakeTelegram
from services.sender.gateway import (
    Account,
    AccountDead,
    AccountLimited,
    ContactPermanent,
    Media,
    Peer,
    RetryAfter,
    SessionElsewhere,
    Transient,
    saved_messages,
)
from services.sender.telethon_gateway import TelethonTelegram
from shared.crypto import SessionCipher
from shared.domain.clock import SystemClock
from shared.settings import Settings
from tests.support import eventually

SENDER, ADA, BOB, PHONE_USER, STRANGER = 1000, 2001, 2002, 2003, 2999


@dataclass
class World:
    server: FakeTelegram
    pool: asyncpg.Pool[Any]
    settings: Settings
    gateway: TelethonTelegram
    account: Account
    campaign_id: UUID
    contacts: dict[str, UUID]

    def peer(self, name: str, key: str | None = None) -> Peer:
        if name == "phone":
            return Peer(key or "+15550003", self.contacts[name], "phone")
        return Peer(key or name, self.contacts[name], "username")

    async def sent_message(self, name: str, random_id: int, telegram_message_id: int) -> None:
        """Our record of a send, as the sender keeps it."""
        await self.pool.execute(
            "INSERT INTO messages (campaign_id, contact_id, telegram_account_id, direction, body,"
            " status, telegram_message_id, random_id, sent_at)"
            " VALUES ($1, $2, $3, 'outgoing', 'hi', 'sent', $4, $5, now())",
            self.campaign_id,
            self.contacts[name],
            self.account.id,
            telegram_message_id,
            random_id,
        )


@pytest.fixture
async def world(pool: asyncpg.Pool[Any], settings: Settings) -> AsyncIterator[World]:
    server = FakeTelegram()
    await server.start()
    server.add_account(SENDER)
    server.add_user(ADA, username="ada")
    server.add_user(BOB, username="bob")
    server.add_user(PHONE_USER, phone="+15550003")
    server.add_user(STRANGER, username="stranger")
    assert settings.session_key is not None
    sealed = SessionCipher(settings.session_key.get_secret_value()).seal(
        server.session_string(SENDER)
    )
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('t@example.com') RETURNING id")
    account_id = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind,"
        " session_string, health_status) VALUES ($1, 'real', 'telethon', $2, 'active')"
        " RETURNING id",
        user,
        sealed,
    )
    campaign_id = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, telegram_account_id) VALUES ($1, 'c', $2)"
        " RETURNING id",
        user,
        account_id,
    )
    contacts = {}
    people = [("ada", "ada", None), ("bob", "bob", None), ("phone", None, "+15550003"),
              ("nobody", "nobody", None)]  # fmt: skip
    for name, username, phone in people:
        contacts[name] = await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username, phone) VALUES ($1, $2, $3)"
            " RETURNING id",
            user,
            username,
            phone,
        )
    gateway = TelethonTelegram(lambda: pool, settings, SystemClock())
    account = Account(account_id, "telethon", {})
    try:
        yield World(server, pool, settings, gateway, account, campaign_id, contacts)
    finally:
        await gateway.close()
        await server.stop()
    assert server.errors == []


def now() -> datetime:
    return datetime.now(UTC)


async def test_a_username_is_resolved_once_and_its_access_hash_kept(world: World) -> None:
    first = await world.gateway.send(world.account, world.peer("ada"), "Hi Ada", 11, now())
    second = await world.gateway.send(world.account, world.peer("ada"), "Again", 12, now())
    assert (first.telegram_message_id, second.telegram_message_id) == (
        world.server.sent[0].message_id,
        world.server.sent[1].message_id,
    )
    assert [(m.peer_user_id, m.text, m.random_id) for m in world.server.sent] == [
        (ADA, "Hi Ada", 11),
        (ADA, "Again", 12),
    ]
    resolves = [c for c in world.server.calls if c.method == "contacts.ResolveUsername"]
    assert len(resolves) == 1
    kept = await world.pool.fetchrow(
        "SELECT peer_key, user_id FROM telegram_peers WHERE contact_id = $1",
        world.contacts["ada"],
    )
    assert kept is not None
    assert (kept["peer_key"], kept["user_id"]) == ("ada", ADA)


async def test_the_message_id_is_recorded_from_a_short_and_from_a_full_updates_answer(
    world: World,
) -> None:
    short = await world.gateway.send(world.account, world.peer("ada"), "Short", 13, now())
    world.server.answer_sends_with(SENDER, "updates")
    full = await world.gateway.send(world.account, world.peer("ada"), "Full", 14, now())
    again = await world.gateway.send(world.account, world.peer("bob"), "Full too", 15, now())

    assert [(m.text, m.random_id) for m in world.server.sent] == [
        ("Short", 13),
        ("Full", 14),
        ("Full too", 15),
    ]
    for delivery, sent in zip((short, full, again), world.server.sent, strict=True):
        assert (delivery.telegram_message_id, delivery.sent_at) == (sent.message_id, sent.date)
        assert not delivery.duplicate
    assert len({m.message_id for m in world.server.sent}) == 3


@pytest.mark.parametrize("group", [False, True], ids=["channel", "group"])
async def test_a_username_that_is_a_group_or_channel_is_refused_for_that_contact(
    world: World, group: bool
) -> None:
    world.server.add_channel(5001, "outreach_news", group=group)
    contact = await world.pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username) SELECT owner_user_id,"
        " 'outreach_news' FROM contacts WHERE id = $1 RETURNING id",
        world.contacts["ada"],
    )
    peer = Peer("outreach_news", contact, "username")

    with pytest.raises(ContactPermanent, match="@outreach_news is a group or channel"):
        await world.gateway.send(world.account, peer, "Hi", 16, now())
    # The account is fine and goes on sending to people.
    delivery = await world.gateway.send(world.account, world.peer("ada"), "Hi Ada", 17, now())

    assert [(m.peer_user_id, m.text) for m in world.server.sent] == [(ADA, "Hi Ada")]
    assert delivery.telegram_message_id == world.server.sent[0].message_id
    kept = await world.pool.fetchval(
        "SELECT count(*) FROM telegram_peers WHERE contact_id = $1", contact
    )
    assert kept == 0


async def test_a_phone_is_imported_and_an_unknown_one_is_permanent(world: World) -> None:
    delivery = await world.gateway.send(world.account, world.peer("phone"), "Hi", 21, now())
    assert delivery.telegram_message_id == world.server.sent[0].message_id
    assert world.server.sent[0].peer_user_id == PHONE_USER
    with pytest.raises(ContactPermanent, match="no Telegram account uses this phone"):
        await world.gateway.send(world.account, world.peer("phone", "+15559999"), "Hi", 22, now())
    with pytest.raises(ContactPermanent, match="UsernameNotOccupied"):
        await world.gateway.send(world.account, world.peer("nobody"), "Hi", 23, now())
    bare = Peer("123", world.contacts["nobody"], "user_id")
    with pytest.raises(ContactPermanent, match="user id alone"):
        await world.gateway.send(world.account, bare, "Hi", 24, now())


async def test_a_repeated_random_id_is_found_again_not_sent_twice(world: World) -> None:
    first = await world.gateway.send(world.account, world.peer("bob"), "Only once", 31, now())
    again = await world.gateway.send(world.account, world.peer("bob"), "Only once", 31, now())
    assert again.duplicate
    assert again.telegram_message_id == first.telegram_message_id
    assert len(world.server.sent) == 1


@pytest.mark.parametrize(
    ("error", "code", "expected", "detail"),
    [
        ("FLOOD_WAIT_42", 420, RetryAfter, "FloodWaitError of 42 s"),
        ("USER_PRIVACY_RESTRICTED", 403, ContactPermanent, "UserPrivacyRestrictedError"),
        ("PRIVACY_PREMIUM_REQUIRED", 403, ContactPermanent, "PRIVACY_PREMIUM_REQUIRED"),
        ("PEER_FLOOD", 400, AccountLimited, "PeerFloodError"),
        ("USER_DEACTIVATED_BAN", 401, AccountDead, "banned"),
        ("AUTH_KEY_UNREGISTERED", 401, AccountDead, "log in again"),
    ],
)
async def test_send_failures_fall_into_the_five_categories(
    world: World, error: str, code: int, expected: type[Exception], detail: str
) -> None:
    world.server.fail("messages.SendMessage", error, code)
    with pytest.raises(expected, match=detail) as raised:
        await world.gateway.send(world.account, world.peer("ada"), "Hi", 41, now())
    if isinstance(raised.value, RetryAfter):
        assert raised.value.seconds == 42
    if isinstance(raised.value, AccountDead):
        assert raised.value.kind == ("banned" if "BAN" in error else "auth_lost")
    assert world.server.sent == []


async def test_a_stale_access_hash_is_resolved_again_once(world: World) -> None:
    world.server.fail("messages.SendMessage", "PEER_ID_INVALID", 400)
    delivery = await world.gateway.send(world.account, world.peer("ada"), "Hi", 51, now())
    assert delivery.telegram_message_id == world.server.sent[0].message_id
    resolves = [c for c in world.server.calls if c.method == "contacts.ResolveUsername"]
    assert len(resolves) == 2  # once before, once after the stale hash
    world.server.fail("messages.SendMessage", "PEER_ID_INVALID", 400, times=2)
    with pytest.raises(ContactPermanent, match="PeerIdInvalid"):
        await world.gateway.send(world.account, world.peer("bob"), "Hi", 52, now())


async def test_the_probe_raises_the_accounts_failure_and_lets_the_session_go(
    world: World,
) -> None:
    await world.gateway.probe(world.account, now())
    world.server.revoke(SENDER)
    with pytest.raises(AccountDead, match="AuthKeyUnregistered") as dead:
        await world.gateway.probe(world.account, now())
    assert dead.value.kind == "auth_lost"
    # The dead session was closed and its lock released: another process may take it up.
    other = TelethonTelegram(lambda: world.pool, world.settings, SystemClock())
    try:
        with pytest.raises(AccountDead):
            await other.probe(world.account, now())
    finally:
        await other.close()


async def test_one_session_is_used_by_one_process_at_a_time(world: World) -> None:
    await world.gateway.probe(world.account, now())
    other = TelethonTelegram(lambda: world.pool, world.settings, SystemClock())
    try:
        with pytest.raises(Transient, match="another sender holds"):
            await other.probe(world.account, now())
        await world.gateway.close()
        await other.probe(world.account, now())  # free once the first let it go
    finally:
        await other.close()


async def test_a_session_sealed_with_another_key_is_an_account_to_log_in_again(
    world: World,
) -> None:
    foreign = SessionCipher(SessionCipher.new_key()).seal(world.server.session_string(SENDER))
    await world.pool.execute(
        "UPDATE telegram_accounts SET session_string = $2 WHERE id = $1", world.account.id, foreign
    )
    with pytest.raises(AccountDead, match="cannot be decrypted"):
        await world.gateway.probe(world.account, now())


async def test_replies_and_reads_pushed_by_telegram_become_incoming_updates(
    world: World,
) -> None:
    delivery = await world.gateway.send(world.account, world.peer("ada"), "Hi", 61, now())
    assert delivery.telegram_message_id is not None
    await world.sent_message("ada", 61, delivery.telegram_message_id)
    await world.server.push_read(SENDER, ADA, delivery.telegram_message_id)
    await world.server.push_reply(SENDER, ADA, "Sounds good")
    await world.server.push_reply(SENDER, STRANGER, "A stranger")  # never written to: ignored

    async def arrived() -> Any:
        count = await world.pool.fetchval("SELECT count(*) FROM telegram_updates")
        return count == 3 or None

    await eventually(arrived)
    async with world.pool.acquire() as connection, connection.transaction():
        incoming = await world.gateway.updates(connection, now())
    # Telethon runs each update's handler as it comes; which of the two is written first varies.
    assert sorted((i.kind, i.random_id, i.text, i.account_id) for i in incoming) == [
        ("read", 61, "", world.account.id),
        ("reply", 61, "Sounds good", world.account.id),
    ]
    async with world.pool.acquire() as connection, connection.transaction():
        assert await world.gateway.updates(connection, now()) == []  # each returned once


async def test_a_reply_missed_while_disconnected_is_found_in_the_dialog(world: World) -> None:
    delivery = await world.gateway.send(world.account, world.peer("bob"), "Hi Bob", 71, now())
    assert delivery.telegram_message_id is not None
    await world.sent_message("bob", 71, delivery.telegram_message_id)
    await world.gateway.close()  # offline: the reply is not pushed to us
    reply_id = await world.server.push_reply(SENDER, BOB, "Missed me?")
    assert await world.gateway.reconcile(now()) == 1
    assert await world.gateway.reconcile(now()) == 1  # seen again, but recorded once
    rows = await world.pool.fetch("SELECT kind, telegram_message_id, body FROM telegram_updates")
    assert [(r["kind"], r["telegram_message_id"], r["body"]) for r in rows] == [
        ("reply", reply_id, "Missed me?")
    ]
    async with world.pool.acquire() as connection, connection.transaction():
        incoming = await world.gateway.updates(connection, now())
    assert [(i.kind, i.random_id) for i in incoming] == [("reply", 71)]


async def test_a_reply_that_comes_before_the_send_is_recorded_waits_for_the_record(
    world: World,
) -> None:
    """Telegram may push the answer to a message before the sender has recorded the send's
    message id (mark_sent): the update waits for the record instead of being lost."""
    first = await world.gateway.send(world.account, world.peer("ada"), "Hi", 71, now())
    assert first.telegram_message_id is not None
    await world.sent_message("ada", 71, first.telegram_message_id)
    # Our second message is queued: Telegram has it, its answer is not recorded yet.
    message_id = await world.pool.fetchval(
        "INSERT INTO messages (campaign_id, contact_id, telegram_account_id, direction, body,"
        " status, random_id) VALUES ($1, $2, $3, 'outgoing', 'Any thoughts?', 'queued', 72)"
        " RETURNING id",
        world.campaign_id,
        world.contacts["ada"],
        world.account.id,
    )
    second = await world.gateway.send(world.account, world.peer("ada"), "Any thoughts?", 72, now())
    await world.server.push_reply(SENDER, ADA, "Love it")

    async def arrived() -> Any:
        return await world.pool.fetchval("SELECT count(*) FROM telegram_updates") == 1 or None

    await eventually(arrived)
    async with world.pool.acquire() as connection, connection.transaction():
        assert await world.gateway.updates(connection, now()) == []  # it waits for the record
    await world.pool.execute(
        "UPDATE messages SET status = 'sent', telegram_message_id = $2, sent_at = now()"
        " WHERE id = $1",
        message_id,
        second.telegram_message_id,
    )
    async with world.pool.acquire() as connection, connection.transaction():
        incoming = await world.gateway.updates(connection, now())
    assert [(i.kind, i.random_id, i.text) for i in incoming] == [("reply", 72, "Love it")]


async def test_a_session_held_by_another_sender_is_handed_over_to_the_one_that_sends(
    world: World,
) -> None:
    """Two senders on one database: the session goes to the one whose sends wait for it (the
    account's partition moved to it), unless the holder still sends from the account."""
    holder = world.gateway
    await holder.probe(world.account, now())  # a check here opened the session
    other = TelethonTelegram(lambda: world.pool, world.settings, SystemClock())
    try:
        with pytest.raises(SessionElsewhere):  # a check there leaves it alone, wanting nothing
            await other.probe(world.account, now())
        assert await holder.hand_over(now()) == 0
        with pytest.raises(SessionElsewhere):  # a send there waits for it
            await other.send(world.account, world.peer("ada"), "Hi", 21, now())
        assert await holder.hand_over(now()) == 1  # the holder never sent from it
        await other.send(world.account, world.peer("ada"), "Hi", 21, now())

        # Now the holder's sends wait, but the other sent a moment ago: it keeps the session.
        with pytest.raises(SessionElsewhere):
            await holder.send(world.account, world.peer("bob"), "Hi", 22, now())
        assert await other.hand_over(now()) == 0
        assert await other.hand_over(now() + timedelta(seconds=31)) == 1
        await holder.send(world.account, world.peer("bob"), "Hi", 22, now())
        assert await holder.hand_over(now()) == 0  # nobody waits for it any more
    finally:
        await other.close()
    assert [(m.peer_user_id, m.random_id) for m in world.server.sent] == [(ADA, 21), (BOB, 22)]


PHOTO = Media(uuid4(), "photo", "offer.jpg", "image/jpeg", b"\xff\xd8\xff" + bytes(300_000))
PDF = Media(uuid4(), "document", "terms.pdf", "application/pdf", b"%PDF-1.7 terms")


def uploads(world: World) -> int:
    return sum(1 for c in world.server.calls if c.method == "upload.SaveFilePart")


async def test_a_photo_arrives_with_its_caption_uploaded_once_for_two_sends(world: World) -> None:
    first = await world.gateway.send(
        world.account, world.peer("ada"), "Our offer", 61, now(), PHOTO
    )
    parts = uploads(world)
    assert parts >= 2  # 300 kB goes up in several parts, as Telethon's upload_file splits it
    second = await world.gateway.send(
        world.account, world.peer("bob"), "Yours too", 62, now(), PHOTO
    )
    assert uploads(world) == parts  # the second send named the first upload's InputPhoto
    ada, bob = world.server.sent
    assert (ada.peer_user_id, ada.text, ada.message_id) == (
        ADA,
        "Our offer",
        first.telegram_message_id,
    )
    assert (bob.peer_user_id, bob.text, bob.message_id) == (
        BOB,
        "Yours too",
        second.telegram_message_id,
    )
    assert ada.media is not None
    assert bob.media is not None
    assert (ada.media.kind, ada.media.data) == ("photo", PHOTO.data)
    assert bob.media.file_id == ada.media.file_id  # one photo on the server, sent twice


async def test_sends_racing_each_other_upload_the_photo_once(world: World) -> None:
    sent = await asyncio.gather(
        world.gateway.send(world.account, world.peer("ada"), "One", 68, now(), PHOTO),
        world.gateway.send(world.account, world.peer("bob"), "Two", 69, now(), PHOTO),
    )
    assert len({d.telegram_message_id for d in sent}) == 2
    one_upload = -(-len(PHOTO.data) // (128 * 1024))  # Telethon's part size for this size
    assert uploads(world) == one_upload
    assert len({m.media.file_id for m in world.server.sent if m.media is not None}) == 1


async def test_a_document_over_10_mb_goes_up_in_big_parts(world: World) -> None:
    big = Media(uuid4(), "document", "catalog.pdf", "application/pdf",
                b"%PDF-1.7" + bytes(10 * 1024 * 1024 + 1))  # fmt: skip
    await world.gateway.send(world.account, world.peer("ada"), "Catalog", 70, now(), big)
    (sent,) = world.server.sent
    assert sent.media is not None
    assert sent.media.data == big.data
    assert uploads(world) == 0
    assert any(c.method == "upload.SaveBigFilePart" for c in world.server.calls)


async def test_a_document_goes_with_its_type_and_name(world: World) -> None:
    await world.gateway.send(world.account, world.peer("ada"), "The terms", 63, now(), PDF)
    (sent,) = world.server.sent
    assert sent.media is not None
    assert (sent.text, sent.media.kind, sent.media.mime_type, sent.media.filename) == (
        "The terms", "document", "application/pdf", "terms.pdf",
    )  # fmt: skip
    assert sent.media.data == PDF.data


async def test_a_media_send_repeated_after_a_lost_answer_is_not_sent_twice(world: World) -> None:
    world.server.drop("messages.SendMedia", when="after")  # sent, but the answer is lost
    # Telethon sends the request again on its new connection: Telegram knows the random_id,
    # and the message is found in the dialog, not sent again; as is a resend after a crash.
    first = await world.gateway.send(world.account, world.peer("bob"), "Photo", 64, now(), PHOTO)
    again = await world.gateway.send(world.account, world.peer("bob"), "Photo", 64, now(), PHOTO)
    assert first.duplicate
    assert again.duplicate
    (sent,) = world.server.sent
    assert first.telegram_message_id == again.telegram_message_id == sent.message_id


async def test_an_expired_file_reference_is_uploaded_again_once(world: World) -> None:
    await world.gateway.send(world.account, world.peer("ada"), "One", 65, now(), PDF)
    world.server.fail("messages.SendMedia", "FILE_REFERENCE_EXPIRED", 400)
    await world.gateway.send(world.account, world.peer("bob"), "Two", 66, now(), PDF)
    assert uploads(world) == 2  # once at first, once more after the refusal
    assert [m.text for m in world.server.sent] == ["One", "Two"]


async def test_a_test_send_arrives_in_saved_messages(world: World) -> None:
    delivery = await world.gateway.send(
        world.account, saved_messages(world.contacts["ada"]), "Hi Ada (test)", 67, now(), PHOTO
    )
    (saved,) = world.server.saved_messages(SENDER)
    assert (saved.text, saved.message_id) == ("Hi Ada (test)", delivery.telegram_message_id)
    assert saved.media is not None
    assert saved.media.data == PHOTO.data
    assert await world.pool.fetchval("SELECT count(*) FROM telegram_peers") == 0


async def test_a_session_the_server_forgot_is_dead_without_an_unretrieved_error(
    world: World,
) -> None:
    """A key the server does not know (the fake restarted, or Telegram forgot it) fails the
    connect with AuthKeyNotFound. Telethon also puts that error on the client's `disconnected`
    future; nobody awaited it, so asyncio logged "Future exception was never retrieved" with
    the whole traceback at ERROR, for every attempt (adoption retries every 15 s)."""
    forgotten = StringSession()
    forgotten.set_dc(2, "127.0.0.1", world.server.port)
    forgotten.auth_key = AuthKey(os.urandom(256))
    assert world.settings.session_key is not None
    sealed = SessionCipher(world.settings.session_key.get_secret_value()).seal(forgotten.save())
    await world.pool.execute(
        "UPDATE telegram_accounts SET session_string = $2 WHERE id = $1", world.account.id, sealed
    )
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        with pytest.raises(AccountDead, match="AuthKeyNotFound"):
            await world.gateway.probe(world.account, now())
        await asyncio.sleep(0.2)  # Telethon's receive loop finishes closing the connection
        gc.collect()  # a future's unretrieved error is reported when it is collected
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [context["message"] for context in unhandled] == []
