"""Fake Telegram's state and behaviour: accounts, users, RPCs, updates (see the package doc)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal

from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import TLRequest, types
from telethon.tl.alltlobjects import tlobjects

from dripline.fake_telegram import srp
from dripline.fake_telegram.handshake import FakeRsaKey, fake_rsa_key
from dripline.fake_telegram.mtproto import Connection, Fault, RpcError, method_name

DC_ID = 2
MESSAGE_LENGTH_MAX = 4096
CAPTION_LENGTH_MAX = 1024
SPAMBOT_ID = 178220800  # @SpamBot's id on Telegram
LOGIN_CODE_LENGTH = 5
# Methods a key that is not logged in may call (Telegram answers the rest 401).
_WITHOUT_LOGIN = frozenset(
    {"help.GetConfig", "auth.SendCode", "auth.SignIn", "account.GetPassword", "auth.CheckPassword"}
)

# @SpamBot's answers to /start, worded as reported by people whose accounts it judged.
SPAMBOT_FREE = "Good news, no limits are currently applied to your account. You're free as a bird!"
_SPAMBOT_LIMITED = (
    "I'm very sorry that you had to contact me. Unfortunately, some actions can trigger a harsh "
    "response from our anti-spam systems. If you think this is the case with you, you can submit "
    "a complaint to our moderators.\n\nWhile the account is limited, you will not be able to send "
    "messages to people who do not have your number in their phone contacts or add them to "
    "groups and channels. Of course, when people contact you first, you can always reply to them."
)


def spambot_limited(until: datetime | None = None) -> str:
    """@SpamBot's answer for a limited account, with the release date when it gives one."""
    if until is None:
        return _SPAMBOT_LIMITED
    when = until.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")
    return f"{_SPAMBOT_LIMITED}\n\nYour account will be automatically released on {when}."


@dataclass(frozen=True)
class SentMedia:
    """The photo or document a messages.SendMedia carried: the bytes as uploaded (assembled
    from upload.saveFilePart or saveBigFilePart), or those of the file a reference named."""

    kind: Literal["photo", "document"]
    file_id: int  # the Photo's or Document's id: the same for every send reusing an upload
    data: bytes = field(repr=False)
    mime_type: str | None = None
    filename: str | None = None


@dataclass(frozen=True)
class SentMessage:
    """A message that messages.SendMessage or messages.SendMedia accepted (`text` is a media
    message's caption). A message the account sent to itself (InputPeerSelf) has its own id as
    peer_user_id: it is in the account's Saved Messages."""

    account_id: int
    peer_user_id: int
    text: str
    random_id: int
    message_id: int
    date: datetime
    media: SentMedia | None = None


@dataclass(frozen=True)
class ReadReceipt:
    """A messages.ReadHistory the server accepted: the account read the peer's messages up to
    `max_id` (every message when 0)."""

    account_id: int
    peer_user_id: int
    max_id: int


@dataclass(frozen=True)
class Call:
    """One RPC as the server saw it (after unwrapping InvokeWithLayer and the like)."""

    account_id: int | None  # None: a key that is not logged in
    method: str
    at: datetime = field(default_factory=lambda: datetime.now(UTC))  # when it arrived


@dataclass(frozen=True)
class Connected:
    """A connection that proved it holds an auth key: on whose key, from which address."""

    account_id: int | None
    peer: tuple[str, int]


@dataclass(frozen=True)
class Init:
    """An initConnection as the server saw it: what the client said about its device, from
    which address (a proxy's, when the client came through one) and on whose key."""

    account_id: int | None
    peer: tuple[str, int]
    api_id: int
    device_model: str
    system_version: str
    app_version: str
    lang_code: str
    system_lang_code: str
    proxy: tuple[str, int] | None  # the MTProxy the client says it came through

    @property
    def device(self) -> tuple[str, str, str, str, str]:
        return (
            self.device_model,
            self.system_version,
            self.app_version,
            self.lang_code,
            self.system_lang_code,
        )


@dataclass
class _User:
    id: int
    access_hash: int
    first_name: str
    username: str | None = None
    phone: str | None = None
    bot: bool = False

    def tl(self, *, is_self: bool = False) -> Any:
        return types.User(
            id=self.id,
            is_self=is_self,
            access_hash=self.access_hash,
            first_name=self.first_name,
            username=self.username,
            phone=self.phone,
            bot=self.bot,
            bot_info_version=1 if self.bot else None,
        )


@dataclass
class _Failure:
    method: str
    error: str
    code: int
    times: int
    user_id: int | None


@dataclass
class _Fault:
    method: str
    fault: Fault
    times: int
    user_id: int | None


@dataclass(frozen=True)
class Freeze:
    """What help.getAppConfig says of a frozen account."""

    since: datetime
    until: datetime
    appeal_url: str


@dataclass(eq=False)
class _Key:
    """An auth key: made by session_string() for an account, or by a client's exchange, when it
    belongs to no account until a login completes on it."""

    key: AuthKey
    user_id: int | None = None
    revoked: tuple[int, str] | None = None
    password_for: int | None = None  # the code was right; the 2FA password is still due
    challenge: srp.Challenge | None = None


@dataclass
class _Code:
    phone: str
    code: str
    key_id: int  # a code is signed in with on the key that asked for it
    expired: bool = False


@dataclass(eq=False)
class _Account:
    user: _User
    pts: int = 1  # 0 would tell Telethon's MessageBox that the pts is unknown
    last_message_id: int = 0
    random_ids: set[int] = field(default_factory=set)
    messages: list[Any] = field(default_factory=list)  # types.Message, oldest first
    events: list[Any] = field(default_factory=list)  # every pts-carrying update, for GetDifference
    connections: set[Connection] = field(default_factory=set)
    password: srp.Verifier | None = None
    banned: bool = False
    freeze: Freeze | None = None
    spambot_answer: str = SPAMBOT_FREE
    # messages.SendMessage's answer: UpdateShortSentMessage, or a full Updates (answer_sends_with)
    full_send_answers: bool = False
    # upload.saveFilePart / saveBigFilePart: file_id -> part index -> bytes, until a send uses it
    uploads: dict[int, dict[int, bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class _File:
    """A photo or document the server holds, named by id and access hash (InputPhoto,
    InputDocument) with its file reference."""

    kind: Literal["photo", "document"]
    id: int
    access_hash: int
    file_reference: bytes
    data: bytes = field(repr=False)
    mime_type: str
    filename: str
    date: datetime


def _now() -> datetime:
    # Whole seconds: TL dates are int32, so this is what the client reads back.
    return datetime.now(UTC).replace(microsecond=0)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def _as_peer(user: Any) -> Any:
    if isinstance(user, types.InputUser):
        return types.InputPeerUser(user.user_id, user.access_hash)
    return types.InputPeerSelf() if isinstance(user, types.InputUserSelf) else user


def _default_access_hash(user_id: int) -> int:
    digest = hashlib.sha256(f"fake-telegram:{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little", signed=True)


@cache
def _known_methods() -> frozenset[str]:
    return frozenset(
        method_name(cls)
        for cls in tlobjects.values()
        if isinstance(cls, type) and issubclass(cls, TLRequest)
    )


class FakeTelegram:
    """Accounts (users with sessions), other users and scripted failures; see the package doc.

    `sent` lists accepted messages, `read` the read receipts (messages.ReadHistory), `calls`
    every RPC (account, TL method name) in order, `connected` every connection once it used
    its auth key (with the client's address: a proxy's, when it came through one), `inits`
    every initConnection (the device the client presented: Telethon sends it on connect, not
    on its own reconnects), and
    `errors` exceptions that are bugs in the fake (a test fixture should assert it is empty).
    """

    def __init__(
        self,
        *,
        login_code: str | None = None,
        record: bool = True,
        rsa_key: FakeRsaKey | None = None,
    ) -> None:
        """`login_code`: the code every login gets (a random one each time by default);
        `record`: keep `calls`, `connected` and `inits` (a long-running server with many
        accounts, `dripline fake-telegram`, keeps none); `rsa_key`: the server's key (the
        process's own by default; `dripline fake-telegram` keeps one across its runs)."""
        if login_code is not None and not (
            login_code.isdigit() and len(login_code) == LOGIN_CODE_LENGTH
        ):
            raise ValueError(f"a login code is {LOGIN_CODE_LENGTH} digits, not {login_code!r}")
        self.port = 0
        self._login_code = login_code
        self._record = record
        self.rsa_key: FakeRsaKey = rsa_key or fake_rsa_key()
        self.sent: list[SentMessage] = []
        self.read: list[ReadReceipt] = []
        self.calls: list[Call] = []
        self.connected: list[Connected] = []
        self.inits: list[Init] = []
        self.errors: list[BaseException] = []  # bugs in the fake itself; tests should see none
        self._users: dict[int, _User] = {}
        self._accounts: dict[int, _Account] = {}
        self._usernames: dict[str, int] = {}
        self._phones: dict[str, int] = {}
        self._channels: dict[str, Any] = {}  # username (lower case) -> types.Channel
        self._keys: dict[int, _Key] = {}
        self._connected: dict[Connection, _Key] = {}
        self._failures: list[_Failure] = []
        self._faults: list[_Fault] = []
        self._files: dict[int, _File] = {}  # photos and documents sent, by id
        self._codes: dict[str, _Code] = {}  # phone_code_hash -> the code sent
        self._last_codes: dict[str, str] = {}  # phone digits -> the last code sent to it
        self._server: asyncio.Server | None = None
        self._serving: dict[asyncio.Task[Any], Connection] = {}
        self._login_handlers: dict[str, Callable[[_Key, Any], Any]] = {
            "auth.SendCode": self._send_code,
            "auth.SignIn": self._sign_in,
            "account.GetPassword": self._get_password,
            "auth.CheckPassword": self._check_password,
        }
        self._handlers: dict[str, Callable[[_Account, Any, Connection], Any]] = {
            "help.GetAppConfig": self._get_app_config,
            "users.GetUsers": self._get_users,
            "users.GetFullUser": self._get_full_user,
            "updates.GetState": self._get_state,
            "updates.GetDifference": self._get_difference,
            "contacts.ResolveUsername": self._resolve_username,
            "contacts.ImportContacts": self._import_contacts,
            "messages.SendMessage": self._send_message,
            "messages.SendMedia": self._send_media,
            "upload.SaveFilePart": self._save_file_part,
            "upload.SaveBigFilePart": self._save_file_part,
            "messages.GetHistory": self._get_history,
            "messages.ReadHistory": self._read_history,
        }
        self.add_user(SPAMBOT_ID, username="SpamBot", first_name="Spam Info Bot")
        self._users[SPAMBOT_ID].bot = True

    # Lifecycle

    async def start(self, port: int = 0) -> None:
        """Listen (on `port`, to come back where clients knew it after a stop)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Closing rather than cancelling: a closed transport ends each serve loop with EOF, and
        # asyncio's stream server logs an error for every handler task that is cancelled.
        for connection in self._serving.values():
            connection.close()
        await asyncio.gather(*self._serving)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connection = Connection(self, reader, writer)
        self._serving[task] = connection
        try:
            await connection.serve()
        finally:
            del self._serving[task]

    # Scenario set-up

    def add_account(
        self,
        user_id: int,
        *,
        phone: str = "",
        first_name: str = "Sender",
        password: str | None = None,
    ) -> None:
        """An account; with a phone it can log in (auth.sendCode), with a password that login
        asks for it too (SESSION_PASSWORD_NEEDED, then SRP)."""
        user = _User(
            user_id, _default_access_hash(user_id), first_name, phone=_digits(phone) or None
        )
        self._add(user)
        verifier = None if password is None else srp.Verifier.for_password(password)
        self._accounts[user_id] = _Account(user, password=verifier)

    def add_user(
        self,
        user_id: int,
        *,
        username: str | None = None,
        phone: str | None = None,
        access_hash: int | None = None,
        first_name: str = "Contact",
    ) -> None:
        if access_hash is None:
            access_hash = _default_access_hash(user_id)
        self._add(
            _User(user_id, access_hash, first_name, username, _digits(phone) if phone else None)
        )

    def _add(self, user: _User) -> None:
        if user.id in self._users:
            raise ValueError(f"user {user.id} already exists")
        self._users[user.id] = user
        if user.username:
            self._usernames[user.username.lower()] = user.id
        if user.phone:
            self._phones[user.phone] = user.id

    def add_channel(self, channel_id: int, username: str, *, group: bool = False) -> None:
        """A public channel (a supergroup with `group`) that contacts.resolveUsername answers
        for `username` with PeerChannel, as Telegram does for a group's or channel's name."""
        if username.lower() in self._usernames or username.lower() in self._channels:
            raise ValueError(f"@{username} is taken")
        self._channels[username.lower()] = types.Channel(
            id=channel_id,
            title=f"@{username}",
            photo=types.ChatPhotoEmpty(),
            date=_now(),
            access_hash=_default_access_hash(channel_id),
            username=username,
            megagroup=group,
            broadcast=not group,
        )

    def answer_sends_with(self, user_id: int, answer: Literal["short", "updates"]) -> None:
        """How messages.SendMessage of that account answers: `short` (UpdateShortSentMessage,
        the default) or `updates`: a full Updates with UpdateMessageID (the message id for the
        random_id) and UpdateNewMessage, as Telegram answers some text sends."""
        self._accounts[user_id].full_send_answers = answer == "updates"

    def session_string(self, user_id: int) -> str:
        """A new login of that account: a fresh auth key in a StringSession for this server."""
        if user_id not in self._accounts:
            raise KeyError(f"no account {user_id}; add_account() first")
        if not self.port:
            raise RuntimeError("start() the server first: the session names its port")
        key = AuthKey(os.urandom(256))
        self._keys[key.key_id] = _Key(key, user_id)
        session = StringSession()
        session.set_dc(DC_ID, "127.0.0.1", self.port)
        session.auth_key = key
        return str(session.save())

    def fail(
        self, method: str, error: str, code: int, *, times: int = 1, user_id: int | None = None
    ) -> None:
        """The next `times` calls of `method` (by that account only, if given) answer
        rpc_error(code, error); rules are checked in the order they were added."""
        if method not in _known_methods():
            raise ValueError(f"{method!r} is not a TL method name like 'messages.SendMessage'")
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        self._failures.append(_Failure(method, error, code, times, user_id))

    def revoke(self, user_id: int, error: str = "AUTH_KEY_UNREGISTERED", code: int = 401) -> None:
        """Every later call on the account's keys so far fails so, except help.getConfig; a
        new login (a new key) works, as after Telegram ends a session."""
        for key in self._keys.values():
            if key.user_id == user_id:
                key.revoked = (code, error)

    def ban(self, user_id: int) -> None:
        """The account is banned: every call on any of its keys is USER_DEACTIVATED_BAN and a
        login is refused with PHONE_NUMBER_BANNED."""
        self._accounts[user_id].banned = True

    def last_code(self, phone: str) -> str:
        """The last login code sent to that phone (what the Telegram app would show)."""
        return self._last_codes[_digits(phone)]

    def expire_codes(self) -> None:
        """Every login code sent so far is expired (PHONE_CODE_EXPIRED)."""
        for code in self._codes.values():
            code.expired = True

    def freeze(
        self,
        user_id: int,
        *,
        since: datetime,
        until: datetime,
        appeal_url: str = "https://t.me/spambot",
    ) -> None:
        """The account is frozen: help.getAppConfig says so, and sends answer
        FROZEN_METHOD_INVALID (420), as Telegram does since 2025."""
        self._accounts[user_id].freeze = Freeze(since, until, appeal_url)

    def unfreeze(self, user_id: int) -> None:
        self._accounts[user_id].freeze = None

    def rename(self, user_id: int, username: str | None) -> None:
        """The user changes (or drops) their username: the old one resolves to nobody."""
        user = self._users[user_id]
        if user.username:
            del self._usernames[user.username.lower()]
        user.username = username
        if username:
            self._usernames[username.lower()] = user_id

    def spambot_says(self, user_id: int, answer: str) -> None:
        """What @SpamBot answers that account's /start from now on (SPAMBOT_FREE by default,
        spambot_limited(until) for a limited one)."""
        self._accounts[user_id].spambot_answer = answer

    # Faults of the connection

    def drop(
        self,
        method: str,
        *,
        when: Literal["before", "after"] = "before",
        times: int = 1,
        user_id: int | None = None,
    ) -> None:
        """The next `times` calls of `method` close their connection instead of answering:
        before the call is handled, or after it took effect (its answer is lost)."""
        self._add_fault(method, Fault(drop=when), times, user_id)

    def delay(
        self,
        method: str,
        seconds: float,
        *,
        times: int = 1,
        user_id: int | None = None,
        then_drop: Literal["before", "after"] | None = None,
    ) -> None:
        """The next `times` calls of `method` are answered `seconds` late (the connection
        serves other calls meanwhile), or dropped after that wait."""
        if seconds <= 0:
            raise ValueError(f"a delay must be positive, not {seconds}")
        self._add_fault(method, Fault(delay=seconds, drop=then_drop), times, user_id)

    def drop_connections(self, user_id: int | None = None) -> int:
        """Close the live connections (of one account, or all) now; returns how many."""
        dropped = [
            connection
            for connection, key in list(self._connected.items())
            if user_id is None or key.user_id == user_id
        ]
        for connection in dropped:
            connection.close()
        return len(dropped)

    def _add_fault(self, method: str, fault: Fault, times: int, user_id: int | None) -> None:
        if method not in _known_methods():
            raise ValueError(f"{method!r} is not a TL method name like 'messages.SendMessage'")
        if times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        self._faults.append(_Fault(method, fault, times, user_id))

    # Server-initiated updates

    async def push_reply(self, account_id: int, from_user_id: int, text: str) -> int:
        """A private message from that user to the account; returns its message id."""
        account = self._accounts[account_id]
        message = self._incoming(account, self._users[from_user_id], text)
        for connection in list(account.connections):
            await connection.drain()
        return int(message.id)

    async def push_read(self, account_id: int, peer_user_id: int, max_id: int) -> None:
        """The peer read the account's messages up to max_id."""
        account = self._accounts[account_id]
        account.pts += 1
        update = types.UpdateReadHistoryOutbox(
            peer=types.PeerUser(peer_user_id), max_id=max_id, pts=account.pts, pts_count=1
        )
        peer = self._users.get(peer_user_id)
        await self._push_and_drain(account, update, [peer] if peer else [])

    def _spambot_replies(self, account: _Account) -> None:
        self._incoming(account, self._users[SPAMBOT_ID], account.spambot_answer)

    def _incoming(self, account: _Account, sender: _User, text: str) -> types.Message:
        message = types.Message(
            id=self._next_message_id(account),
            peer_id=types.PeerUser(sender.id),
            date=_now(),
            message=text,
            out=False,
        )
        account.messages.append(message)
        account.pts += 1
        update = types.UpdateNewMessage(message=message, pts=account.pts, pts_count=1)
        self._push(account, update, [sender])
        return message

    async def _push_and_drain(self, account: _Account, update: Any, users: list[_User]) -> None:
        self._push(account, update, users)
        for connection in list(account.connections):
            await connection.drain()

    def _push(
        self, account: _Account, update: Any, users: list[_User], exclude: Connection | None = None
    ) -> None:
        """Keep a pts-carrying update for GetDifference and push it to live connections."""
        account.events.append(update)
        body = bytes(
            types.Updates(
                updates=[update],
                users=[self._user_tl(account, u) for u in users],
                chats=[],
                date=_now(),
                seq=0,
            )
        )
        for connection in list(account.connections):
            if connection is not exclude and connection.receives_updates:
                connection.send(body, response=False)

    # The Backend that each mtproto.Connection talks to

    def auth_key(self, key_id: int) -> AuthKey | None:
        known = self._keys.get(key_id)
        return None if known is None else known.key

    def add_auth_key(self, key: AuthKey) -> None:
        self._keys[key.key_id] = _Key(key)

    def attach(self, connection: Connection, key_id: int) -> None:
        key = self._keys[key_id]
        self._connected[connection] = key
        if self._record:
            self.connected.append(Connected(key.user_id, connection.peer))
        if key.user_id is not None:
            self._accounts[key.user_id].connections.add(connection)

    def detach(self, connection: Connection) -> None:
        key = self._connected.pop(connection, None)
        if key is not None and key.user_id is not None:
            self._accounts[key.user_id].connections.discard(connection)

    def init_connection(self, connection: Connection, init: Any) -> None:
        if not self._record:
            return
        key = self._connected.get(connection)
        proxy = None if init.proxy is None else (init.proxy.address, init.proxy.port)
        self.inits.append(
            Init(
                None if key is None else key.user_id,
                connection.peer,
                init.api_id,
                init.device_model,
                init.system_version,
                init.app_version,
                init.lang_code,
                init.system_lang_code,
                proxy,
            )
        )

    def fault(self, connection: Connection, query: Any) -> Fault | None:
        key = self._connected[connection]
        method = method_name(type(query))
        for scripted in self._faults:
            if scripted.method == method and scripted.user_id in (None, key.user_id):
                scripted.times -= 1
                if scripted.times <= 0:
                    self._faults.remove(scripted)
                return scripted.fault
        return None

    def call(self, connection: Connection, query: Any) -> Any:
        key = self._connected[connection]
        account = None if key.user_id is None else self._accounts[key.user_id]
        method = method_name(type(query))
        if self._record:
            self.calls.append(Call(key.user_id, method))
        # Telegram serves help.getConfig without a login; Telethon sends it on every connect.
        if method == "help.GetConfig":
            return self._get_config()
        if key.revoked is not None:
            raise RpcError(*key.revoked)
        if account is not None and account.banned:
            raise RpcError(401, "USER_DEACTIVATED_BAN")
        for failure in self._failures:
            if failure.method == method and failure.user_id in (None, key.user_id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                raise RpcError(failure.code, failure.error)
        if method in self._login_handlers:
            return self._login_handlers[method](key, query)
        if account is None:
            raise RpcError(401, "AUTH_KEY_UNREGISTERED")
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError(400, "METHOD_NOT_IMPLEMENTED_IN_FAKE")
        return handler(account, query, connection)

    # Logging in

    def _send_code(self, key: _Key, request: Any) -> Any:
        account = self._account_by_phone(request.phone_number)
        if account is None:
            raise RpcError(400, "PHONE_NUMBER_INVALID")
        if account.banned:
            raise RpcError(400, "PHONE_NUMBER_BANNED")
        phone = _digits(request.phone_number)
        code = self._login_code or "".join(
            secrets.choice("0123456789") for _ in range(LOGIN_CODE_LENGTH)
        )
        phone_code_hash = secrets.token_hex(9)
        self._codes[phone_code_hash] = _Code(phone, code, key.key.key_id)
        self._last_codes[phone] = code
        return types.auth.SentCode(
            type=types.auth.SentCodeTypeApp(length=LOGIN_CODE_LENGTH),
            phone_code_hash=phone_code_hash,
        )

    def _sign_in(self, key: _Key, request: Any) -> Any:
        sent = self._codes.get(request.phone_code_hash)
        # A hash Telegram does not know (any more), or from another key or phone: Telegram
        # answers PHONE_CODE_EXPIRED, and the login starts again with a new code.
        if (
            sent is None
            or sent.expired
            or sent.key_id != key.key.key_id
            or sent.phone != _digits(request.phone_number)
        ):
            raise RpcError(400, "PHONE_CODE_EXPIRED")
        if not request.phone_code:
            raise RpcError(400, "PHONE_CODE_EMPTY")
        if request.phone_code != sent.code:
            raise RpcError(400, "PHONE_CODE_INVALID")
        del self._codes[request.phone_code_hash]
        account = self._account_by_phone(sent.phone)
        assert account is not None  # a code is only sent to an account's phone
        if account.banned:
            raise RpcError(400, "PHONE_NUMBER_BANNED")
        if account.password is not None:
            key.password_for = account.user.id
            raise RpcError(401, "SESSION_PASSWORD_NEEDED")
        return self._authorize(key, account)

    def _password_account(self, key: _Key) -> _Account:
        user_id = key.user_id if key.user_id is not None else key.password_for
        if user_id is None:
            raise RpcError(401, "AUTH_KEY_UNREGISTERED")
        return self._accounts[user_id]

    def _get_password(self, key: _Key, request: Any) -> Any:
        account = self._password_account(key)
        new_algo = srp.Verifier.for_password("").algo
        common = {
            "new_algo": new_algo,
            "new_secure_algo": types.SecurePasswordKdfAlgoSHA512(os.urandom(8)),
            "secure_random": os.urandom(32),
        }
        if account.password is None:
            return types.account.Password(has_password=False, **common)
        key.challenge = srp.challenge(account.password)
        return types.account.Password(
            has_password=True,
            current_algo=account.password.algo,
            srp_B=key.challenge.srp_b,
            srp_id=key.challenge.srp_id,
            **common,
        )

    def _check_password(self, key: _Key, request: Any) -> Any:
        account = self._password_account(key)
        check = request.password
        challenge, key.challenge = key.challenge, None  # one answer per challenge
        if account.password is None or not isinstance(check, types.InputCheckPasswordSRP):
            raise RpcError(400, "PASSWORD_HASH_INVALID")
        if challenge is None or check.srp_id != challenge.srp_id:
            raise RpcError(400, "SRP_ID_INVALID")
        if not srp.verify(account.password, challenge, check.A, check.M1):
            raise RpcError(400, "PASSWORD_HASH_INVALID")
        key.password_for = None
        return self._authorize(key, account)

    def _authorize(self, key: _Key, account: _Account) -> Any:
        key.user_id = account.user.id
        for connection, connected in self._connected.items():
            if connected is key:
                account.connections.add(connection)
        return types.auth.Authorization(user=account.user.tl(is_self=True))

    def _account_by_phone(self, phone: str) -> _Account | None:
        user_id = self._phones.get(_digits(phone))
        return None if user_id is None else self._accounts.get(user_id)

    # The logged-in account's RPCs

    def _get_app_config(self, account: _Account, request: Any, connection: Connection) -> Any:
        values: list[Any] = [
            types.JsonObjectValue("message_length_max", types.JsonNumber(MESSAGE_LENGTH_MAX))
        ]
        if account.freeze is not None:
            values += [
                types.JsonObjectValue(
                    "freeze_since_date", types.JsonNumber(account.freeze.since.timestamp())
                ),
                types.JsonObjectValue(
                    "freeze_until_date", types.JsonNumber(account.freeze.until.timestamp())
                ),
                types.JsonObjectValue(
                    "freeze_appeal_url", types.JsonString(account.freeze.appeal_url)
                ),
            ]
        config = types.JsonObject(values)
        digest = hashlib.sha256(bytes(config)).digest()
        return types.help.AppConfig(
            hash=int.from_bytes(digest[:4], "little", signed=True), config=config
        )

    def _get_full_user(self, account: _Account, request: Any, connection: Connection) -> Any:
        user = self._peer_user(account, _as_peer(request.id))
        return types.users.UserFull(
            full_user=types.UserFull(
                id=user.id,
                settings=types.PeerSettings(),
                notify_settings=types.PeerNotifySettings(),
                common_chats_count=0,
            ),
            chats=[],
            users=[self._user_tl(account, user)],
        )

    def _get_config(self) -> Any:
        now = _now()
        return types.Config(
            date=now,
            expires=now + timedelta(hours=1),
            test_mode=False,
            this_dc=DC_ID,
            dc_options=[types.DcOption(id=DC_ID, ip_address="127.0.0.1", port=self.port)],
            dc_txt_domain_name="fake.invalid",
            chat_size_max=200,
            megagroup_size_max=200000,
            forwarded_count_max=100,
            online_update_period_ms=210000,
            offline_blur_timeout_ms=5000,
            offline_idle_timeout_ms=30000,
            online_cloud_timeout_ms=300000,
            notify_cloud_delay_ms=30000,
            notify_default_delay_ms=1500,
            push_chat_period_ms=60000,
            push_chat_limit=2,
            edit_time_limit=172800,
            revoke_time_limit=172800,
            revoke_pm_time_limit=2147483647,
            rating_e_decay=2419200,
            stickers_recent_limit=200,
            channels_read_media_period=604800,
            call_receive_timeout_ms=20000,
            call_ring_timeout_ms=90000,
            call_connect_timeout_ms=30000,
            call_packet_timeout_ms=10000,
            me_url_prefix="https://t.me/",
            caption_length_max=1024,
            message_length_max=MESSAGE_LENGTH_MAX,
            webfile_dc_id=4,
        )

    def _get_users(self, account: _Account, request: Any, connection: Connection) -> Any:
        found = []
        for wanted in request.id:
            if isinstance(wanted, types.InputUserSelf):
                found.append(account.user.tl(is_self=True))
            elif isinstance(wanted, types.InputUser):
                user = self._users.get(wanted.user_id)
                if user is not None and user.access_hash == wanted.access_hash:
                    found.append(self._user_tl(account, user))
        return found

    def _get_state(self, account: _Account, request: Any, connection: Connection) -> Any:
        return types.updates.State(pts=account.pts, qts=0, date=_now(), seq=0, unread_count=0)

    def _get_difference(self, account: _Account, request: Any, connection: Connection) -> Any:
        missed = [u for u in account.events if u.pts > request.pts]
        if not missed:
            return types.updates.DifferenceEmpty(date=_now(), seq=0)
        new = [u for u in missed if isinstance(u, types.UpdateNewMessage)]
        return types.updates.Difference(
            new_messages=[u.message for u in new],
            new_encrypted_messages=[],
            other_updates=[u for u in missed if not isinstance(u, types.UpdateNewMessage)],
            chats=[],
            users=[self._user_tl(account, u) for u in self._users.values()],
            state=self._get_state(account, request, connection),
        )

    def _resolve_username(self, account: _Account, request: Any, connection: Connection) -> Any:
        channel = self._channels.get(request.username.lower())
        if channel is not None:
            return types.contacts.ResolvedPeer(
                peer=types.PeerChannel(channel.id), chats=[channel], users=[]
            )
        user_id = self._usernames.get(request.username.lower())
        if user_id is None:
            raise RpcError(400, "USERNAME_NOT_OCCUPIED")
        return types.contacts.ResolvedPeer(
            peer=types.PeerUser(user_id),
            chats=[],
            users=[self._user_tl(account, self._users[user_id])],
        )

    def _import_contacts(self, account: _Account, request: Any, connection: Connection) -> Any:
        imported, users = [], []
        for contact in request.contacts:
            user_id = self._phones.get(_digits(contact.phone))
            if user_id is not None:
                imported.append(types.ImportedContact(user_id=user_id, client_id=contact.client_id))
                users.append(self._user_tl(account, self._users[user_id]))
        return types.contacts.ImportedContacts(
            imported=imported, popular_invites=[], retry_contacts=[], users=users
        )

    def _send_message(self, account: _Account, request: Any, connection: Connection) -> Any:
        if account.freeze is not None:
            raise RpcError(420, "FROZEN_METHOD_INVALID")
        peer = self._peer_user(account, request.peer)
        if not request.message.strip():
            raise RpcError(400, "MESSAGE_EMPTY")
        if len(request.message) > MESSAGE_LENGTH_MAX:
            raise RpcError(400, "MESSAGE_TOO_LONG")
        if request.random_id in account.random_ids:
            raise RpcError(500, "RANDOM_ID_DUPLICATE")
        account.random_ids.add(request.random_id)
        message = types.Message(
            id=self._next_message_id(account),
            peer_id=types.PeerUser(peer.id),
            date=_now(),
            message=request.message,
            out=True,
            from_id=types.PeerUser(account.user.id),
        )
        account.messages.append(message)
        self.sent.append(
            SentMessage(
                account.user.id,
                peer.id,
                request.message,
                request.random_id,
                message.id,
                message.date,
            )
        )
        account.pts += 1
        update = types.UpdateNewMessage(message=message, pts=account.pts, pts_count=1)
        self._push(account, update, [peer], exclude=connection)
        if peer.id == SPAMBOT_ID and request.message.strip() == "/start":
            # After this answer has left: the bot's reply is a later update, as on Telegram.
            asyncio.get_running_loop().call_soon(self._spambot_replies, account)
        if account.full_send_answers:
            return types.Updates(
                updates=[
                    types.UpdateMessageID(id=message.id, random_id=request.random_id),
                    update,
                ],
                users=[self._user_tl(account, peer)],
                chats=[],
                date=message.date,
                seq=0,
            )
        return types.UpdateShortSentMessage(
            id=message.id, pts=account.pts, pts_count=1, date=message.date, out=True
        )

    def saved_messages(self, user_id: int) -> list[SentMessage]:
        """What that account sent to itself (its Saved Messages), oldest first."""
        return [m for m in self.sent if m.account_id == user_id and m.peer_user_id == user_id]

    def _save_file_part(self, account: _Account, request: Any, connection: Connection) -> Any:
        if not request.bytes:
            raise RpcError(400, "FILE_PART_EMPTY")
        account.uploads.setdefault(request.file_id, {})[request.file_part] = request.bytes
        return True

    def _uploaded(self, account: _Account, file: Any) -> bytes:
        """The bytes of an InputFile or InputFileBig, assembled from its parts."""
        parts = account.uploads.pop(file.id, {})
        if sorted(parts) != list(range(file.parts)):
            raise RpcError(400, "FILE_PARTS_INVALID")
        data = b"".join(parts[i] for i in range(file.parts))
        small = isinstance(file, types.InputFile) and file.md5_checksum
        if small and hashlib.md5(data).hexdigest() != file.md5_checksum:
            raise RpcError(400, "MD5_CHECKSUM_INVALID")
        return data

    def _file(self, kind: Literal["photo", "document"], media: Any, account: _Account) -> _File:
        """The file a send names: uploaded now (kept, with a new id), or one kept earlier."""
        if isinstance(media, (types.InputMediaUploadedPhoto, types.InputMediaUploadedDocument)):
            data = self._uploaded(account, media.file)
            filename, mime_type = media.file.name, "image/jpeg"
            if isinstance(media, types.InputMediaUploadedDocument):
                mime_type = media.mime_type
                for attribute in media.attributes:
                    if isinstance(attribute, types.DocumentAttributeFilename):
                        filename = attribute.file_name
            file_id = secrets.randbits(63)
            kept = _File(kind, file_id, secrets.randbits(63) - 2**62, secrets.token_bytes(8),
                         data, mime_type, filename, _now())  # fmt: skip
            self._files[file_id] = kept
            return kept
        known = self._files.get(media.id.id)
        if known is None or known.kind != kind or known.access_hash != media.id.access_hash:
            raise RpcError(400, "MEDIA_INVALID")
        if known.file_reference != media.id.file_reference:
            raise RpcError(400, "FILE_REFERENCE_EXPIRED")
        return known

    def _send_media(self, account: _Account, request: Any, connection: Connection) -> Any:
        """A photo or document with its caption. Answered with Updates (UpdateMessageID for our
        random_id, UpdateNewMessage with the media), as Telegram answers a media send."""
        if account.freeze is not None:
            raise RpcError(420, "FROZEN_METHOD_INVALID")
        peer = self._peer_user(account, request.peer)
        if len(request.message) > CAPTION_LENGTH_MAX:
            raise RpcError(400, "MEDIA_CAPTION_TOO_LONG")
        if request.random_id in account.random_ids:
            raise RpcError(500, "RANDOM_ID_DUPLICATE")
        media = request.media
        if isinstance(media, (types.InputMediaUploadedPhoto, types.InputMediaPhoto)):
            kept = self._file("photo", media, account)
            size = types.PhotoSize(type="x", w=1, h=1, size=len(kept.data))
            shown: Any = types.MessageMediaPhoto(
                photo=types.Photo(
                    kept.id, kept.access_hash, kept.file_reference, kept.date, [size], DC_ID
                )
            )
        elif isinstance(media, (types.InputMediaUploadedDocument, types.InputMediaDocument)):
            kept = self._file("document", media, account)
            shown = types.MessageMediaDocument(
                document=types.Document(
                    kept.id,
                    kept.access_hash,
                    kept.file_reference,
                    kept.date,
                    kept.mime_type,
                    len(kept.data),
                    DC_ID,
                    [types.DocumentAttributeFilename(kept.filename)],
                )
            )
        else:
            raise RpcError(400, "MEDIA_INVALID")
        account.random_ids.add(request.random_id)
        message = types.Message(
            id=self._next_message_id(account),
            peer_id=types.PeerUser(peer.id),
            date=_now(),
            message=request.message,
            out=True,
            from_id=types.PeerUser(account.user.id),
            media=shown,
        )
        account.messages.append(message)
        sent_media = SentMedia(kept.kind, kept.id, kept.data, kept.mime_type, kept.filename)
        self.sent.append(
            SentMessage(
                account.user.id,
                peer.id,
                request.message,
                request.random_id,
                message.id,
                message.date,
                sent_media,
            )
        )
        account.pts += 1
        update = types.UpdateNewMessage(message=message, pts=account.pts, pts_count=1)
        self._push(account, update, [peer], exclude=connection)
        return types.Updates(
            updates=[types.UpdateMessageID(id=message.id, random_id=request.random_id), update],
            users=[self._user_tl(account, peer)],
            chats=[],
            date=message.date,
            seq=0,
        )

    def _get_history(self, account: _Account, request: Any, connection: Connection) -> Any:
        peer = self._peer_user(account, request.peer)
        found = [
            m
            for m in reversed(account.messages)
            if m.peer_id.user_id == peer.id
            and (not request.offset_id or m.id < request.offset_id)
            and (not request.max_id or m.id < request.max_id)
            and m.id > request.min_id
        ]
        found = found[max(request.add_offset, 0) :][: request.limit or 100]
        return types.messages.Messages(
            messages=found, topics=[], chats=[], users=[self._user_tl(account, peer)]
        )

    def _read_history(self, account: _Account, request: Any, connection: Connection) -> Any:
        peer = self._peer_user(account, request.peer)
        self.read.append(ReadReceipt(account.user.id, peer.id, request.max_id))
        account.pts += 1
        return types.messages.AffectedMessages(pts=account.pts, pts_count=1)

    # Helpers

    def _peer_user(self, account: _Account, peer: Any) -> _User:
        if isinstance(peer, types.InputPeerSelf):
            return account.user
        if isinstance(peer, types.InputPeerUser):
            user = self._users.get(peer.user_id)
            if user is not None and user.access_hash == peer.access_hash:
                return user
        raise RpcError(400, "PEER_ID_INVALID")

    def _user_tl(self, account: _Account, user: _User) -> Any:
        return user.tl(is_self=user is account.user)

    def _next_message_id(self, account: _Account) -> int:
        # Private-chat message ids are per account and shared by both directions.
        account.last_message_id += 1
        return account.last_message_id
