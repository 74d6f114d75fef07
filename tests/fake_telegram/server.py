"""Fake Telegram's state and behaviour: accounts, users, RPCs, updates (see the package doc)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from telethon.crypto import AuthKey
from telethon.sessions import StringSession
from telethon.tl import TLRequest, types
from telethon.tl.alltlobjects import tlobjects

from tests.fake_telegram.mtproto import Connection, RpcError, method_name

DC_ID = 2
MESSAGE_LENGTH_MAX = 4096


@dataclass(frozen=True)
class SentMessage:
    """A message that messages.SendMessage accepted."""

    account_id: int
    peer_user_id: int
    text: str
    random_id: int
    message_id: int
    date: datetime


@dataclass(frozen=True)
class Call:
    """One RPC as the server saw it (after unwrapping InvokeWithLayer and the like)."""

    account_id: int
    method: str


@dataclass
class _User:
    id: int
    access_hash: int
    first_name: str
    username: str | None = None
    phone: str | None = None

    def tl(self, *, is_self: bool = False) -> Any:
        return types.User(
            id=self.id,
            is_self=is_self,
            access_hash=self.access_hash,
            first_name=self.first_name,
            username=self.username,
            phone=self.phone,
        )


@dataclass
class _Failure:
    method: str
    error: str
    code: int
    times: int
    user_id: int | None


@dataclass(eq=False)
class _Account:
    user: _User
    pts: int = 1  # 0 would tell Telethon's MessageBox that the pts is unknown
    last_message_id: int = 0
    random_ids: set[int] = field(default_factory=set)
    messages: list[Any] = field(default_factory=list)  # types.Message, oldest first
    events: list[Any] = field(default_factory=list)  # every pts-carrying update, for GetDifference
    revoked: tuple[int, str] | None = None
    connections: set[Connection] = field(default_factory=set)


def _now() -> datetime:
    # Whole seconds: TL dates are int32, so this is what the client reads back.
    return datetime.now(UTC).replace(microsecond=0)


def _digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


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

    `sent` lists accepted messages, `calls` every RPC (account, TL method name) in order, and
    `errors` exceptions that are bugs in the fake (a test fixture should assert it is empty).
    """

    def __init__(self) -> None:
        self.port = 0
        self.sent: list[SentMessage] = []
        self.calls: list[Call] = []
        self.errors: list[BaseException] = []  # bugs in the fake itself; tests should see none
        self._users: dict[int, _User] = {}
        self._accounts: dict[int, _Account] = {}
        self._usernames: dict[str, int] = {}
        self._phones: dict[str, int] = {}
        self._keys: dict[int, tuple[AuthKey, int]] = {}  # key_id -> (key, account's user id)
        self._connected: dict[Connection, _Account] = {}
        self._failures: list[_Failure] = []
        self._server: asyncio.Server | None = None
        self._serving: dict[asyncio.Task[Any], Connection] = {}
        self._handlers: dict[str, Callable[[_Account, Any, Connection], Any]] = {
            "help.GetConfig": self._get_config,
            "users.GetUsers": self._get_users,
            "updates.GetState": self._get_state,
            "updates.GetDifference": self._get_difference,
            "contacts.ResolveUsername": self._resolve_username,
            "contacts.ImportContacts": self._import_contacts,
            "messages.SendMessage": self._send_message,
            "messages.GetHistory": self._get_history,
        }

    # Lifecycle

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
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

    def add_account(self, user_id: int, *, phone: str = "", first_name: str = "Sender") -> None:
        user = _User(
            user_id, _default_access_hash(user_id), first_name, phone=_digits(phone) or None
        )
        self._add(user)
        self._accounts[user_id] = _Account(user)

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

    def session_string(self, user_id: int) -> str:
        """A new login of that account: a fresh auth key in a StringSession for this server."""
        if user_id not in self._accounts:
            raise KeyError(f"no account {user_id}; add_account() first")
        if not self.port:
            raise RuntimeError("start() the server first: the session names its port")
        key = AuthKey(os.urandom(256))
        self._keys[key.key_id] = (key, user_id)
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
        """Every later call of that account fails so, except help.getConfig."""
        self._accounts[user_id].revoked = (code, error)

    # Server-initiated updates

    async def push_reply(self, account_id: int, from_user_id: int, text: str) -> int:
        """A private message from that user to the account; returns its message id."""
        account = self._accounts[account_id]
        sender = self._users[from_user_id]
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
        await self._push_and_drain(account, update, [sender])
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
        return None if known is None else known[0]

    def attach(self, connection: Connection, key_id: int) -> None:
        account = self._accounts[self._keys[key_id][1]]
        account.connections.add(connection)
        self._connected[connection] = account

    def detach(self, connection: Connection) -> None:
        account = self._connected.pop(connection, None)
        if account is not None:
            account.connections.discard(connection)

    def call(self, connection: Connection, query: Any) -> Any:
        account = self._connected[connection]
        method = method_name(type(query))
        self.calls.append(Call(account.user.id, method))
        # Telegram serves help.getConfig without a login; Telethon sends it on every connect.
        if account.revoked is not None and method != "help.GetConfig":
            raise RpcError(*account.revoked)
        for failure in self._failures:
            if failure.method == method and failure.user_id in (None, account.user.id):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                raise RpcError(failure.code, failure.error)
        handler = self._handlers.get(method)
        if handler is None:
            raise RpcError(400, "METHOD_NOT_IMPLEMENTED_IN_FAKE")
        return handler(account, query, connection)

    def _get_config(self, account: _Account, request: Any, connection: Connection) -> Any:
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
        return types.UpdateShortSentMessage(
            id=message.id, pts=account.pts, pts_count=1, date=message.date, out=True
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
