"""The server side of one MTProto 2.0 connection: TcpFull framing, encryption, service messages.

Accounts, RPCs and updates belong to the `Backend` (`dripline.fake_telegram.server.FakeTelegram`);
this module only gets a message from the wire to `Backend.call` and its answer back. It reuses
Telethon's own pieces (`MTProtoState._calc_key`, `AES`, `BinaryReader`, the TL classes) so the
bytes are exactly what the client expects, with x = 8 for server-to-client messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from telethon.crypto import AES, AuthKey
from telethon.errors import TypeNotFoundError
from telethon.extensions import BinaryReader
from telethon.network.mtprotostate import MTProtoState
from telethon.tl import TLRequest, functions, types
from telethon.tl.core import GzipPacked, MessageContainer, RpcResult

from dripline.fake_telegram.handshake import FakeRsaKey, Handshake, HandshakeError

log = logging.getLogger(__name__)

_MAX_PACKET = 16 * 1024 * 1024
_VECTOR = 0x1CB5C415
# Requests that only carry another one; the answer is the inner request's.
_WRAPPERS = (
    functions.InvokeWithLayerRequest,
    functions.InitConnectionRequest,
    functions.InvokeAfterMsgRequest,
    functions.InvokeAfterMsgsRequest,
)


class RpcError(Exception):
    """Raised by `Backend.call`: answered as rpc_error(code, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Fault:
    """What to do instead of answering a call at once: wait `delay` seconds first, and/or close
    the connection before the call is handled ("before") or after it took effect but before
    its answer left ("after"), as a connection that breaks at that moment."""

    delay: float = 0.0
    drop: Literal["before", "after"] | None = None


class _Dropped(Exception):
    """A scripted drop: close the connection without another word."""


class ProtocolError(Exception):
    """The client broke the protocol: log it and close the connection."""


class Backend(Protocol):
    """What a Connection needs from the fake Telegram behind it."""

    errors: list[BaseException]  # exceptions that are bugs in the fake, for tests to check
    rsa_key: FakeRsaKey  # the key the auth-key exchange is signed with

    def add_auth_key(self, key: AuthKey) -> None:
        """A client created this key with the exchange; it belongs to no account yet."""
        ...

    def fault(self, connection: Connection, query: Any) -> Fault | None:
        """A scripted drop or delay for this call, if any."""
        ...

    def auth_key(self, key_id: int) -> AuthKey | None:
        """The key with that id, or None: the client then gets -404."""
        ...

    def attach(self, connection: Connection, key_id: int) -> None:
        """The connection proved it holds that key (its first message decrypted)."""
        ...

    def detach(self, connection: Connection) -> None:
        """The connection closed (it may never have been attached)."""
        ...

    def init_connection(self, connection: Connection, init: Any) -> None:
        """The client described itself (initConnection: device, app, languages, proxy)."""
        ...

    def call(self, connection: Connection, query: Any) -> Any:
        """Answer one unwrapped RPC: a TL object, a bool (Bool) or a list (a Vector), or raise
        RpcError."""
        ...


def method_name(cls: type) -> str:
    module = cls.__module__.rsplit(".", 1)[-1]
    name = cls.__name__.removesuffix("Request")
    return name if module == "functions" else f"{module}.{name}"


_BOOL_TRUE, _BOOL_FALSE = 0x997275B5, 0xBC799737


def _serialize(result: Any) -> bytes:
    if isinstance(result, bool):  # a Bool answer (upload.saveFilePart): boolTrue or boolFalse
        return struct.pack("<I", _BOOL_TRUE if result else _BOOL_FALSE)
    if isinstance(result, list):
        return struct.pack("<Ii", _VECTOR, len(result)) + b"".join(bytes(x) for x in result)
    return bytes(result)


class Connection:
    """One TCP connection: TcpFull framing, MTProto 2.0 encryption, service messages."""

    def __init__(
        self, backend: Backend, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._backend = backend
        self._reader = reader
        self._writer = writer
        # The client's address as this server sees it (a proxy's, when it came through one).
        self.peer: tuple[str, int] = writer.get_extra_info("peername")[:2]
        self._name = str(self.peer)
        self._recv_seq = 0
        self._send_seq = 0
        self._auth_key: AuthKey | None = None
        self._session_id: int | None = None
        self._salt = struct.unpack("<q", os.urandom(8))[0]
        self._last_msg_id = 0
        self._content_messages = 0
        self._handshake: Handshake | None = None
        self._delayed: set[asyncio.Task[None]] = set()
        self.receives_updates = False

    async def serve(self) -> None:
        try:
            while True:
                try:
                    packet = await self._read_packet()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return  # the client hung up
                self._handle_packet(packet)
                await self.drain()
        except _Dropped:
            log.info("fake telegram: dropping %s as scripted", self._name)
        except ProtocolError as e:
            log.warning("fake telegram: closing %s: %s", self._name, e)
        except Exception as e:
            log.exception("fake telegram: closing %s after a bug in the fake", self._name)
            self._backend.errors.append(e)
        finally:
            self.close()

    def close(self) -> None:
        for task in self._delayed:
            task.cancel()
        self._backend.detach(self)
        self._writer.close()

    async def drain(self) -> None:
        # A connection that broke is closed by its serve loop when the read fails.
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()

    async def _read_packet(self) -> bytes:
        header = await self._reader.readexactly(8)
        length, seq = struct.unpack("<ii", header)
        if not 12 <= length <= _MAX_PACKET:
            raise ProtocolError(f"bad TcpFull length {length} (only TcpFull is supported)")
        rest = await self._reader.readexactly(length - 8)
        payload, (crc,) = rest[:-4], struct.unpack("<I", rest[-4:])
        if zlib.crc32(header + payload) != crc:
            raise ProtocolError("bad TcpFull CRC32")
        if seq != self._recv_seq:
            raise ProtocolError(f"TcpFull seq {seq}, expected {self._recv_seq}")
        self._recv_seq += 1
        return payload

    def _write_packet(self, payload: bytes) -> None:
        header = struct.pack("<ii", len(payload) + 12, self._send_seq)
        self._send_seq += 1
        self._writer.write(header + payload + struct.pack("<I", zlib.crc32(header + payload)))

    def _handle_packet(self, payload: bytes) -> None:
        if len(payload) < 8:
            raise ProtocolError(f"packet of {len(payload)} bytes")
        (key_id,) = struct.unpack_from("<Q", payload)
        if key_id == 0:
            self._handle_plain(payload)
            return
        key = self._backend.auth_key(key_id)
        if key is None:
            # What Telegram answers for a key it forgot; Telethon raises AuthKeyNotFound.
            self._write_packet(struct.pack("<i", -404))
            raise ProtocolError(f"unknown auth key {key_id}")
        if self._auth_key is not None and self._auth_key.key_id != key_id:
            raise ProtocolError("auth key changed within a connection")
        session_id, msg_id, body = self._decrypt(key.key, payload)
        if self._auth_key is None:
            self._auth_key = key
            self._backend.attach(self, key_id)
        if session_id != self._session_id:
            self._session_id = session_id
            created = types.NewSessionCreated(
                first_msg_id=msg_id, unique_id=session_id, server_salt=self._salt
            )
            self.send(bytes(created), response=False)
        try:
            obj = BinaryReader(body).tgread_object()
        except TypeNotFoundError as e:
            raise ProtocolError(f"unknown constructor {e.invalid_constructor_id:08x}") from e
        self._handle_message(msg_id, obj)

    def _handle_plain(self, payload: bytes) -> None:
        """An unencrypted message: only the auth-key exchange is sent so."""
        if len(payload) < 20:
            raise ProtocolError(f"plain message of {len(payload)} bytes")
        _key_id, _msg_id, length = struct.unpack_from("<qqi", payload)
        try:
            request = BinaryReader(payload[20 : 20 + length]).tgread_object()
        except TypeNotFoundError as e:
            raise ProtocolError(f"unknown constructor {e.invalid_constructor_id:08x}") from e
        if self._handshake is None:
            self._handshake = Handshake(self._backend.rsa_key)
        try:
            answer, key = self._handshake.answer(request)
        except HandshakeError as e:
            raise ProtocolError(f"auth-key exchange: {e}") from e
        if key is not None:
            self._backend.add_auth_key(key)
            self._handshake = None
        body = bytes(answer)
        msg_id = self._next_msg_id(response=True)
        self._write_packet(struct.pack("<qqi", 0, msg_id, len(body)) + body)

    def _decrypt(self, key: bytes, payload: bytes) -> tuple[int, int, bytes]:
        msg_key, encrypted = payload[8:24], payload[24:]
        if not encrypted or len(encrypted) % 16:
            raise ProtocolError(f"encrypted data of {len(encrypted)} bytes")
        aes_key, aes_iv = MTProtoState._calc_key(key, msg_key, True)
        plain = AES.decrypt_ige(encrypted, aes_key, aes_iv)
        if hashlib.sha256(key[88:120] + plain).digest()[8:24] != msg_key:
            raise ProtocolError("msg_key does not match")
        _salt, session_id, msg_id, _seq_no, length = struct.unpack_from("<qqqii", plain)
        if not 0 <= length <= len(plain) - 32 - 12:
            raise ProtocolError(f"message length {length} in {len(plain)} bytes")
        if msg_id % 4:
            raise ProtocolError(f"client msg_id {msg_id} not divisible by 4")
        return session_id, msg_id, plain[32 : 32 + length]

    def _handle_message(self, msg_id: int, obj: Any) -> None:
        if isinstance(obj, MessageContainer):
            for inner in obj.messages:
                self._handle_message(inner.msg_id, inner.obj)
        elif isinstance(obj, GzipPacked):
            self._handle_message(msg_id, BinaryReader(obj.data).tgread_object())
        elif isinstance(obj, functions.PingRequest | functions.PingDelayDisconnectRequest):
            self.send(bytes(types.Pong(msg_id=msg_id, ping_id=obj.ping_id)), response=True)
        elif isinstance(obj, TLRequest):
            self._answer(msg_id, obj)
        elif isinstance(obj, types.MsgsAck):
            pass  # the server never re-sends, so acknowledgements change nothing
        else:
            log.warning("fake telegram: ignoring %s from %s", type(obj).__name__, self._name)

    def _answer(self, msg_id: int, request: Any) -> None:
        query, with_updates = request, True
        while True:
            if isinstance(query, functions.InvokeWithoutUpdatesRequest):
                with_updates = False
            elif isinstance(query, functions.InitConnectionRequest):
                self._backend.init_connection(self, query)
            elif not isinstance(query, _WRAPPERS):
                break
            query = query.query
        if with_updates:
            self.receives_updates = True
        fault = self._backend.fault(self, query)
        if fault is None:
            self.send(self._rpc_result(msg_id, query), response=True)
        elif fault.delay > 0:
            # Answered later while the connection goes on serving, as Telegram may answer
            # out of order.
            task = asyncio.create_task(self._answer_later(msg_id, query, fault))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
        else:
            self._faulty_answer(msg_id, query, fault)

    async def _answer_later(self, msg_id: int, query: Any, fault: Fault) -> None:
        await asyncio.sleep(fault.delay)
        try:
            self._faulty_answer(msg_id, query, fault)
        except _Dropped:
            log.info("fake telegram: dropping %s as scripted", self._name)
            self.close()
            return
        await self.drain()

    def _faulty_answer(self, msg_id: int, query: Any, fault: Fault) -> None:
        if fault.drop == "before":
            raise _Dropped
        result = self._rpc_result(msg_id, query)
        if fault.drop == "after":
            raise _Dropped
        self.send(result, response=True)

    def _rpc_result(self, msg_id: int, query: Any) -> bytes:
        try:
            body = _serialize(self._backend.call(self, query))
        except RpcError as e:
            body = bytes(types.RpcError(error_code=e.code, error_message=e.message))
        except Exception as e:
            # Answer rather than drop the connection: Telethon would re-send the request on
            # reconnect and hit the same bug again. The test sees the error and the log.
            log.exception("fake telegram: %s failed", method_name(type(query)))
            self._backend.errors.append(e)
            body = bytes(types.RpcError(error_code=400, error_message="FAKE_TELEGRAM_BUG"))
        return struct.pack("<Iq", RpcResult.CONSTRUCTOR_ID, msg_id) + body

    def _next_msg_id(self, *, response: bool) -> int:
        # Server msg_ids are 1 mod 4 for answers and 3 mod 4 otherwise, increasing.
        kind = 1 if response else 3
        candidate = max(int(time.time() * 2**32), self._last_msg_id + 1)
        msg_id = candidate + (kind - candidate) % 4
        self._last_msg_id = msg_id
        return msg_id

    def send(self, body: bytes, *, response: bool) -> None:
        """Encrypt and queue one message; synchronous, so messages leave in call order."""
        # Only reachable after the first message was decrypted, which sets both.
        assert self._auth_key is not None
        assert self._session_id is not None
        key = self._auth_key.key
        msg_id = self._next_msg_id(response=response)
        self._content_messages += 1
        seq_no = self._content_messages * 2 - 1
        plain = struct.pack("<qqqii", self._salt, self._session_id, msg_id, seq_no, len(body))
        plain += body
        plain += os.urandom(12 + (-(len(plain) + 12) % 16))
        msg_key = hashlib.sha256(key[96:128] + plain).digest()[8:24]
        aes_key, aes_iv = MTProtoState._calc_key(key, msg_key, False)
        encrypted = AES.encrypt_ige(plain, aes_key, aes_iv)
        self._write_packet(struct.pack("<Q", self._auth_key.key_id) + msg_key + encrypted)
