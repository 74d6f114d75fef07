"""A small local proxy for tests: SOCKS5 (RFC 1928, with RFC 1929 username and password when
given) or HTTP CONNECT (with Basic credentials when given), relaying bytes both ways.

It records every tunnel it opened, with the local address of its own connection to the
destination: that is the client address the destination (dripline/fake_telegram) sees, so a test
can tell which of the server's connections came through this proxy and which did not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import struct
from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Tunnel:
    destination: tuple[str, int]
    outbound: tuple[str, int]  # this proxy's end of the connection to the destination


class Relay:
    """Start, stop and the tunnels' outbound addresses of a local relay (this proxy, and the
    MTProxy of tests/mtproxy.py); the dataclass that mixes it in holds `port`, `tunnels` (each
    with `outbound`), `_server`, `_tasks` and `_writers`, and defines `_serve`."""

    port: int
    tunnels: list[Any]
    _server: asyncio.Server | None
    _tasks: set[asyncio.Task[None]]
    _writers: set[asyncio.StreamWriter]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            # Closed rather than cancelled: each relay then ends with EOF (asyncio logs an error
            # for a stream handler task that is cancelled).
            for writer in list(self._writers):
                writer.close()
            await asyncio.gather(*self._tasks)
            await self._server.wait_closed()
            self._server = None

    def outbound(self) -> set[tuple[str, int]]:
        return {tunnel.outbound for tunnel in self.tunnels}


@dataclass
class LocalProxy(Relay):
    kind: Literal["socks5", "http"] = "socks5"
    username: str | None = None
    password: str | None = None
    port: int = 0
    tunnels: list[Tunnel] = field(default_factory=list)
    refused: int = 0  # handshakes refused for wrong credentials
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
            if self.kind == "socks5":
                destination = await self._socks5(reader, writer)
            else:
                destination = await self._http(reader, writer)
            if destination is None:
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*destination)
            self._writers.add(upstream_writer)
            outbound = upstream_writer.get_extra_info("sockname")[:2]
            self.tunnels.append(Tunnel(destination, outbound))
            if self.kind == "socks5":
                writer.write(b"\x05\x00\x00\x01" + bytes(4) + struct.pack(">H", 0))
            else:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()
            if upstream_writer is not None:
                self._writers.discard(upstream_writer)
                upstream_writer.close()

    async def _socks5(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        version, count = await reader.readexactly(2)
        assert version == 5, f"SOCKS version {version}"
        methods = await reader.readexactly(count)
        wanted = 0x02 if self.username is not None else 0x00
        if wanted not in methods:
            writer.write(b"\x05\xff")
            self.refused += 1
            return None
        writer.write(bytes([5, wanted]))
        if wanted == 0x02:
            _, length = await reader.readexactly(2)
            username = (await reader.readexactly(length)).decode()
            (length,) = await reader.readexactly(1)
            password = (await reader.readexactly(length)).decode()
            if (username, password) != (self.username, self.password):
                writer.write(b"\x01\x01")
                self.refused += 1
                return None
            writer.write(b"\x01\x00")
        _, command, _, address_type = await reader.readexactly(4)
        assert command == 1, f"SOCKS command {command} (only CONNECT)"
        if address_type == 1:
            host = str(ipaddress.IPv4Address(await reader.readexactly(4)))
        elif address_type == 3:
            (length,) = await reader.readexactly(1)
            host = (await reader.readexactly(length)).decode()
        else:
            host = str(ipaddress.IPv6Address(await reader.readexactly(16)))
        (port,) = struct.unpack(">H", await reader.readexactly(2))
        return host, port

    async def _http(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[str, int] | None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        request, *headers = head.split("\r\n")
        method, target, _ = request.split(" ")
        assert method == "CONNECT", f"HTTP {method} (only CONNECT)"
        if self.username is not None:
            fields = dict(h.split(": ", 1) for h in headers if ": " in h)
            given = {name.lower(): value for name, value in fields.items()}
            expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if given.get("proxy-authorization") != f"Basic {expected}":
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                self.refused += 1
                return None
        host, port = target.rsplit(":", 1)
        return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()
