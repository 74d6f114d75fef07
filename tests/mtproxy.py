"""A small MTProxy for tests: it speaks the obfuscated2 framing of an MTProxy with a secret, as
Telegram's MTProxy does, and relays to dripline/fake_telegram.

A client opens with 64 bytes: the keys of both directions are sha256(bytes of that header +
secret) (one direction reads the header reversed), and the header's last eight bytes, decrypted,
carry the protocol tag (0xdddddddd: padded intermediate, 0xeeeeeeee: intermediate) and the DC
id. A header that does not decrypt to a known tag (a wrong secret) is refused: the connection is
closed, as a real MTProxy does. Each intermediate packet (a length, the MTProto message, up to
3 bytes of padding) is forwarded to the fake server in its TcpFull framing, and each of the
server's TcpFull packets back as a padded intermediate one.

Like tests/proxies.py it records every tunnel it opened, with the local address of its own
connection to the server: the client address the fake server sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import struct
import zlib
from dataclasses import dataclass, field

from telethon.crypto import AESModeCTR

from tests.proxies import Relay

PADDED, INTERMEDIATE = b"\xdd" * 4, b"\xee" * 4


@dataclass(frozen=True)
class Tunnel:
    dc_id: int
    outbound: tuple[str, int]  # this proxy's end of the connection to the server


@dataclass
class LocalMTProxy(Relay):
    secret: str  # 32 hex digits, as the proxy's operator hands it out (without dd)
    upstream: tuple[str, int]  # the fake server, every DC
    port: int = 0
    tunnels: list[Tunnel] = field(default_factory=list)
    refused: int = 0  # headers that did not decrypt with the secret
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            header = await reader.readexactly(64)
            secret = bytes.fromhex(self.secret)
            backwards = header[55:7:-1]
            decrypt = AESModeCTR(hashlib.sha256(header[8:40] + secret).digest(), header[40:56])
            encrypt = AESModeCTR(hashlib.sha256(backwards[:32] + secret).digest(), backwards[32:48])
            plain = decrypt.encrypt(header)  # CTR: the same operation both ways
            tag = plain[56:60]
            if tag not in (PADDED, INTERMEDIATE):
                self.refused += 1
                return
            (dc_id,) = struct.unpack("<h", plain[60:62])
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(upstream_writer)
            self.tunnels.append(Tunnel(dc_id, upstream_writer.get_extra_info("sockname")[:2]))
            await asyncio.gather(
                _to_server(reader, decrypt, upstream_writer, padded=tag == PADDED),
                _to_client(upstream_reader, writer, encrypt, padded=tag == PADDED),
            )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            if upstream_writer is not None:
                self._writers.discard(upstream_writer)
                upstream_writer.close()


async def _to_server(
    reader: asyncio.StreamReader,
    decrypt: AESModeCTR,
    writer: asyncio.StreamWriter,
    *,
    padded: bool,
) -> None:
    seq = 0
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            (length,) = struct.unpack("<i", decrypt.encrypt(await reader.readexactly(4)))
            packet = decrypt.encrypt(await reader.readexactly(length))
            if padded and length % 4:
                packet = packet[: -(length % 4)]
            head = struct.pack("<ii", len(packet) + 12, seq)
            seq += 1
            writer.write(head + packet + struct.pack("<I", zlib.crc32(head + packet)))
            await writer.drain()
    writer.close()


async def _to_client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    encrypt: AESModeCTR,
    *,
    padded: bool,
) -> None:
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            (length,) = struct.unpack("<i", (await reader.readexactly(8))[:4])
            packet = (await reader.readexactly(length - 8))[:-4]  # without the CRC
            if padded:
                packet += os.urandom(random.randint(0, 3))
            writer.write(encrypt.encrypt(struct.pack("<i", len(packet)) + packet))
            await writer.drain()
    writer.close()
