"""`dripline fake-telegram` as a user runs it: a process that prints where it listens and what
to log in with; an unmodified TelegramClient (through the sender's login core) logs in with the
printed phone, code and 2FA password, trusting the RSA key file it wrote; and the bench
accounts' sessions work."""

from __future__ import annotations

import asyncio
import contextlib
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from telethon import TelegramClient, functions, types
from telethon.crypto import rsa
from telethon.sessions import StringSession

from dripline.fake_telegram.run import (
    ACCOUNT_ID,
    CODE,
    PASSWORD,
    PHONE,
    Options,
    private_key_file,
    serve,
)
from dripline.fake_telegram.server import DC_ID
from dripline.infra import free_port
from services.sender.connections import sender_client_options
from services.sender.login import (
    ApiCredentials,
    Connection,
    DeviceIdentity,
    Endpoint,
    LoggedIn,
    PhoneLogin,
)

CONNECTION = Connection(ApiCredentials(1, "any"), DeviceIdentity("MacBook Pro", "macOS 14", "5.1"))


@pytest.fixture
def command(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """The command's printed instructions, the key file it names, and its sessions file."""
    sessions = tmp_path / "sessions.txt"
    process = subprocess.Popen(
        [sys.executable, "-m", "dripline", "fake-telegram", "--rsa-key-out",
         str(tmp_path / "key.pem"), "--accounts", "2", "--sessions-out", str(sessions)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:  # until the instructions end
            lines.append(line)
            if line.startswith("Not Telegram"):
                break
        text = "".join(lines)
        key_file = Path(printed(r"DRIPLINE_TELEGRAM_RSA_KEY_FILE=(\S+)", text))
        yield text, key_file.read_text(), sessions.read_text()
    finally:
        process.terminate()
        assert process.wait(30) == 0


def run_once(key_file: Path) -> str:
    """Start the command, read its instructions, stop it; the public key it wrote."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dripline", "fake-telegram", "--rsa-key-out", str(key_file)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if line.startswith("Not Telegram"):
                break
        return key_file.read_text()
    finally:
        process.terminate()
        assert process.wait(30) == 0


def test_a_restarted_fake_keeps_its_rsa_key(tmp_path: Path) -> None:
    """A sender trusts the key file as it was when the sender started; a restarted fake (which
    forgets its logins) must keep the key, or logging the accounts in again fails with
    'auth_key generation failed' until Dripline is restarted too (before, a new key each run).
    The private half is kept beside it, readable by its owner only."""
    key_file = tmp_path / "key.pem"
    first = run_once(key_file)
    assert run_once(key_file) == first
    private = private_key_file(key_file)
    assert private.exists()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600


def printed(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, (pattern, text)
    return found.group(1)


async def test_a_login_with_what_the_command_prints_works(command: tuple[str, str, str]) -> None:
    text, key_pem, sessions = command
    endpoint = printed(r"DRIPLINE_TELEGRAM_LOGIN_ENDPOINT=(\S+)", text)
    phone = printed(r"Log in with phone (\S+),", text)
    code = printed(r"code (\d+),", text)
    password = printed(r"2FA password (\S+)", text)
    rsa.add_key(key_pem, old=False)  # what the sender does with the key file
    dc, host, port = endpoint.split(":")
    login = PhoneLogin(CONNECTION, endpoint=Endpoint(int(dc), host, int(port)))
    now = datetime.now(UTC)

    pending = await login.start(phone, now)
    waiting = await login.submit_code(pending, code, now)
    assert not isinstance(waiting, LoggedIn)  # the account has a 2FA password
    done = await login.submit_password(waiting, password, now)
    assert isinstance(done, LoggedIn)
    assert done.phone == phone.lstrip("+")

    # The bench's accounts: logged-in sessions, one a line.
    lines = sessions.splitlines()
    assert len(lines) == 2
    user_id, session = lines[0].split(" ", 1)
    client = TelegramClient(StringSession(session), **sender_client_options(CONNECTION))
    await client.connect()
    try:
        me = await client(functions.users.GetUsersRequest(id=[types.InputUserSelf()]))
        assert me[0].id == int(user_id)
    finally:
        await client.disconnect()


async def test_what_it_prints_shows_each_message_with_its_attachment(tmp_path: Path) -> None:
    """A user watches the command's output to see a campaign's messages arrive: a photo's
    arrival is shown with the photo (before, only the caption was printed), and a test send
    to the account's own Saved Messages says so."""
    lines: list[str] = []
    started = asyncio.Event()  # the instructions are printed once the key file is written

    def say(line: str) -> None:
        lines.append(line)
        started.set()

    options = Options(port=free_port(), rsa_key_out=tmp_path / "key.pem")
    server = asyncio.create_task(serve(options, say=say))
    try:
        await asyncio.wait_for(started.wait(), 30)
        rsa.add_key(options.rsa_key_out.read_text(), old=False)
        login = PhoneLogin(CONNECTION, endpoint=Endpoint(DC_ID, "127.0.0.1", options.port))
        now = datetime.now(UTC)
        waiting = await login.submit_code(await login.start(PHONE, now), CODE, now)
        assert not isinstance(waiting, LoggedIn)  # the account has a 2FA password
        done = await login.submit_password(waiting, PASSWORD, now)
        assert isinstance(done, LoggedIn)
        photo = tmp_path / "red.png"
        photo.write_bytes(PNG)
        client = TelegramClient(StringSession(done.session), **sender_client_options(CONNECTION))
        await client.connect()
        try:
            await client.send_message("fake_ada", "Hi Ada!")
            await client.send_file("fake_ada", str(photo), caption="A picture for Ada")
            await client.send_message("me", "Hi there!")
        finally:
            await client.disconnect()
        deadline = asyncio.get_running_loop().time() + 10
        while sum(line.startswith("received:") for line in lines) < 3:
            assert asyncio.get_running_loop().time() < deadline, lines
            await asyncio.sleep(0.1)
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
    received = [line for line in lines if line.startswith("received:")]
    assert received == [
        f"received: from account {ACCOUNT_ID} to user {ACCOUNT_ID + 101}: 'Hi Ada!'",
        f"received: from account {ACCOUNT_ID} to user {ACCOUNT_ID + 101}: 'A picture for Ada'"
        f" with photo red.png ({len(PNG)} bytes)",
        f"received: from account {ACCOUNT_ID} to its own Saved Messages: 'Hi there!'",
    ]


# An 8x8 red PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000080000000808020000004b6d29dc0000001249444154789c"
    "63f8cfc0801561171db4120028ff3fc16eecdf610000000049454e44ae426082"
)
