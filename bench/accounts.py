"""Many Telegram accounts in one sender process (issue 14 item 7).

    .venv/bin/python -m bench.accounts [--accounts 1000] [--idle 30] [--sends 5000]

The fake Telegram server (`dripline fake-telegram --accounts N`, a real MTProto server) runs in
a process of its own and makes N logged-in accounts. This process plays the sender: it connects
each account as the sender's Telethon adapter does (services/sender/connections.py: the
account's device identity and the sender's client options; the sender's two update handlers and
its watcher task on `client.disconnected`), then probes it as the first health check does
(help.getAppConfig and updates.getState, after which the server pushes it updates). It reports:

- the time to connect and probe the N accounts (at most `--parallel` at once);
- this process's RSS: before, after, and per account;
- idle CPU: the share of one core this process (and the fake) used over `--idle` seconds (30)
  with every account connected and nothing to do: the worst of `--windows` (3) windows in a
  row, since Telethon pings each connection only once a minute;
- the throughput of `--sends` messages spread over the accounts (each resolves its peer once
  by username, then raw messages.sendMessage with a random_id, as the adapter sends).

Target: 1,000 accounts under 2 GiB RSS and under 10% of a core idle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from telethon import TelegramClient, events, functions, types
from telethon.sessions import StringSession

from services.sender.connections import ApiCredentials, Connection, sender_client_options
from shared.domain.devices import default_device

PEER_USERNAME = "fake_ada"  # one of `dripline fake-telegram`'s contacts
TARGET_RSS_BYTES = 2 * 2**30
TARGET_IDLE_CORE = 0.10
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | str = "self") -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def start_fake(accounts: int, workdir: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    """The fake server in its own process; the accounts' session strings."""
    sessions = workdir / "sessions.txt"
    fake = subprocess.Popen(
        [sys.executable, "-m", "dripline", "fake-telegram", "--quiet",
         "--accounts", str(accounts), "--sessions-out", str(sessions),
         "--rsa-key-out", str(workdir / "rsa.pem")],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not sessions.exists():
        if fake.poll() is not None:
            raise RuntimeError(f"the fake server exited ({fake.returncode})")
        if time.monotonic() > deadline:
            fake.terminate()
            raise RuntimeError("the fake server did not write its sessions in 5 minutes")
        time.sleep(0.2)
    lines = sessions.read_text().splitlines()
    return fake, [line.split(" ", 1)[1] for line in lines]


class Account:
    """One account as the sender holds it: a client, its handlers and its watcher."""

    def __init__(self, number: int, session: str) -> None:
        account_id = UUID(int=number + 1)
        connection = Connection(ApiCredentials(1, "bench"), default_device(account_id))
        self.client = TelegramClient(StringSession(session), **sender_client_options(connection))
        self.client.add_event_handler(
            self._on_event, events.NewMessage(incoming=True, func=lambda e: e.is_private)
        )
        self.client.add_event_handler(self._on_event, events.MessageRead(inbox=False))
        self.watcher: asyncio.Task[None] | None = None
        self.peer: Any = None
        self.dropped = False

    async def _on_event(self, event: Any) -> None:
        return None

    async def connect(self) -> None:
        await self.client.connect()
        self.watcher = asyncio.create_task(self._watch())
        await self.client(functions.help.GetAppConfigRequest(hash=0))
        await self.client(functions.updates.GetStateRequest())

    async def _watch(self) -> None:
        try:
            await self.client.disconnected
        finally:
            self.dropped = True

    async def send(self, text: str) -> None:
        if self.peer is None:
            resolved = await self.client(
                functions.contacts.ResolveUsernameRequest(username=PEER_USERNAME)
            )
            user = resolved.users[0]
            self.peer = types.InputPeerUser(user.id, user.access_hash)
        await self.client(
            functions.messages.SendMessageRequest(
                peer=self.peer, message=text, random_id=random.getrandbits(63), no_webpage=True
            )
        )

    async def close(self) -> None:
        if self.watcher is not None:
            self.watcher.cancel()
        await self.client.disconnect()


async def bounded(parallel: int, jobs: list[Any]) -> None:
    gate = asyncio.Semaphore(parallel)

    async def one(job: Any) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


async def measure(args: argparse.Namespace, sessions: list[str], fake_pid: int) -> bool:
    before = rss_bytes()
    accounts = [Account(number, session) for number, session in enumerate(sessions)]
    started = time.perf_counter()
    await bounded(args.parallel, [account.connect for account in accounts])
    connect_s = time.perf_counter() - started
    n = len(accounts)
    print(f"connected and probed {n:,} accounts in {connect_s:.1f} s "
          f"({n / connect_s:.0f} a second, {args.parallel} at a time)", flush=True)  # fmt: skip

    await asyncio.sleep(2)  # the last probes' updates settle
    after = rss_bytes()
    per_account = (after - before) / n
    print(f"RSS of this (sender) process: {before / 2**20:.0f} MiB before, "
          f"{after / 2**20:.0f} MiB with {n:,} accounts: {per_account / 1024:.0f} KiB an account; "
          f"the fake server: {rss_bytes(fake_pid) / 2**20:.0f} MiB")  # fmt: skip

    # Telethon pings each connection once a minute, so one 30 s window may miss every ping:
    # the worst of `--windows` windows in a row is reported.
    print(f"idle: {args.windows} windows of {args.idle:.0f} s ...", flush=True)
    idle = fake_idle = 0.0
    for _ in range(args.windows):
        cpu0, fake0, wall0 = cpu_seconds(), cpu_seconds(fake_pid), time.perf_counter()
        await asyncio.sleep(args.idle)
        wall = time.perf_counter() - wall0
        idle = max(idle, (cpu_seconds() - cpu0) / wall)
        fake_idle = max(fake_idle, (cpu_seconds(fake_pid) - fake0) / wall)
    dropped = sum(account.dropped for account in accounts)
    print(f"idle CPU of this process, the worst {args.idle:.0f} s: {idle:.1%} of a core (the fake "
          f"server: {fake_idle:.1%}); connections dropped meanwhile: {dropped}")  # fmt: skip

    sends = [accounts[i % n] for i in range(args.sends)]
    started = time.perf_counter()
    await bounded(args.parallel, [partial(a.send, f"hello {i}") for i, a in enumerate(sends)])
    send_s = time.perf_counter() - started
    print(f"sent {args.sends:,} messages over {min(n, args.sends):,} accounts in {send_s:.1f} s: "
          f"{args.sends / send_s:.0f} a second ({args.parallel} in flight; the first send of "
          f"each account also resolves its peer)")  # fmt: skip
    peak = rss_bytes()
    print(f"RSS after the sends: {peak / 2**20:.0f} MiB")

    await bounded(args.parallel, [account.close for account in accounts])
    within = max(after, peak) < TARGET_RSS_BYTES * n / 1000 and idle < TARGET_IDLE_CORE
    verdict = "within" if within else "OUTSIDE"
    print(f"{verdict} the target (per 1,000 accounts: under 2 GiB RSS, under 10% of a core idle)")
    return within


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0, help="seconds in an idle window")
    parser.add_argument("--windows", type=int, default=3, help="idle windows (the worst counts)")
    parser.add_argument("--sends", type=int, default=5000)
    parser.add_argument("--parallel", type=int, default=100, help="connects/sends at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-accounts-") as workdir:
        print(f"starting the fake Telegram with {args.accounts:,} accounts ...", flush=True)
        fake, sessions = start_fake(args.accounts, Path(workdir))
        try:
            asyncio.run(measure(args, sessions, fake.pid))
        finally:
            fake.terminate()
            fake.wait(30)


if __name__ == "__main__":
    main()
