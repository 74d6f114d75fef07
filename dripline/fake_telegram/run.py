"""`dripline fake-telegram`: the fake MTProto server in the foreground, to try a login, a
campaign or the scale benchmark without a real Telegram account (docs/accounts.md, "Try a
login without a real Telegram account").

It prints what a sender needs to point at it (DRIPLINE_TELEGRAM_LOGIN_ENDPOINT and
DRIPLINE_TELEGRAM_RSA_KEY_FILE), a phone number that logs in with a fixed code and 2FA
password, and the contacts a campaign can reach; then each message it receives, as it arrives.
With `--accounts N --sessions-out FILE` it also makes N logged-in accounts and writes one
`user_id session_string` line each (bench/accounts.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dripline.fake_telegram.handshake import FakeRsaKey, new_private_pem, rsa_key_from_pem
from dripline.fake_telegram.server import DC_ID, FakeTelegram, SentMessage

PHONE = "+15550100"
CODE = "12345"
PASSWORD = "fake-2fa-password"  # the fake's published test password
ACCOUNT_ID = 5550100
# People a campaign can reach on the fake (username, phone).
CONTACTS = (("fake_ada", "+15550201"), ("fake_grace", "+15550202"), ("fake_linus", "+15550203"))
# The bench's accounts: user ids from here on, each with a phone.
BENCH_FIRST_ID = 7_000_000
# How often the arrivals are printed.
REPORT_S = 0.5


@dataclass(frozen=True)
class Options:
    port: int
    rsa_key_out: Path
    accounts: int = 0
    sessions_out: Path | None = None
    quiet: bool = False


def populate(fake: FakeTelegram, accounts: int) -> None:
    """The test account (with a 2FA password), the contacts, and `accounts` bench accounts."""
    fake.add_account(ACCOUNT_ID, phone=PHONE, first_name="Try Me", password=PASSWORD)
    for number, (username, phone) in enumerate(CONTACTS, start=1):
        fake.add_user(ACCOUNT_ID + 100 + number, username=username, phone=phone,
                      first_name=username.removeprefix("fake_").title())  # fmt: skip
    for user_id in range(BENCH_FIRST_ID, BENCH_FIRST_ID + accounts):
        fake.add_account(user_id, phone=f"+1999{user_id}", first_name=f"Bench {user_id}")


def instructions(fake: FakeTelegram, options: Options) -> str:
    contacts = ", ".join(f"@{username} ({phone})" for username, phone in CONTACTS)
    return "\n".join(
        [
            f"Fake Telegram (MTProto, data centre {DC_ID}) listening on 127.0.0.1:{fake.port}",
            "",
            "Point the sender (and `dripline run`) at it with:",
            f"  export DRIPLINE_TELEGRAM_LOGIN_ENDPOINT={DC_ID}:127.0.0.1:{fake.port}",
            f"  export DRIPLINE_TELEGRAM_RSA_KEY_FILE={options.rsa_key_out.resolve()}",
            "  (and any DRIPLINE_TELEGRAM_API_ID / DRIPLINE_TELEGRAM_API_HASH: the fake does not"
            " check them)",
            "",
            f"Log in with phone {PHONE}, code {CODE}, 2FA password {PASSWORD}",
            "  (dripline accounts login, or POST /telegram-accounts/logins)",
            f"Contacts a campaign can reach: {contacts}",
            "",
            "Not Telegram: nothing leaves this machine. Ctrl-C stops it: its logins and messages"
            " are lost (log the accounts in again), its RSA key is kept for the next run.",
        ]
    )


def arrival(message: SentMessage) -> str:
    """The line printed for a message received: who sent it to whom (a test send goes to the
    account's own Saved Messages), its text (a caption, with media), and the photo or document
    it carried, so that an attachment's arrival can be seen."""
    to = (
        "its own Saved Messages"
        if message.peer_user_id == message.account_id
        else f"user {message.peer_user_id}"
    )
    line = f"received: from account {message.account_id} to {to}: {message.text!r}"
    media = message.media
    if media is not None:
        line += f" with {media.kind} {media.filename or '(no name)'} ({len(media.data)} bytes"
        line += f", {media.mime_type})" if media.kind == "document" and media.mime_type else ")"
    return line


def private_key_file(rsa_key_out: Path) -> Path:
    """Where the command keeps its private key: beside the public one it writes."""
    return rsa_key_out.with_name(f"{rsa_key_out.stem}.private{rsa_key_out.suffix}")


def kept_rsa_key(rsa_key_out: Path) -> FakeRsaKey:
    """The same key at every run with the same `--rsa-key-out`: a sender started against an
    earlier run keeps trusting it, so accounts that lost their login when the fake restarted
    can log in again without restarting Dripline. Made once (mode 0600)."""
    path = private_key_file(rsa_key_out)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.touch(mode=0o600)
        partial.write_text(new_private_pem())
        partial.replace(path)
    return rsa_key_from_pem(path.read_text())


async def serve(options: Options, say: Callable[[str], None] = print) -> None:
    """Run until SIGINT or SIGTERM."""
    fake = FakeTelegram(login_code=CODE, record=False, rsa_key=kept_rsa_key(options.rsa_key_out))
    populate(fake, options.accounts)
    await fake.start(options.port)
    options.rsa_key_out.write_text(fake.rsa_key.public_pem)
    if options.sessions_out is not None:
        lines = (
            f"{user_id} {fake.session_string(user_id)}\n"
            for user_id in range(BENCH_FIRST_ID, BENCH_FIRST_ID + options.accounts)
        )
        partial = options.sessions_out.with_suffix(".partial")
        partial.write_text("".join(lines))
        partial.replace(options.sessions_out)  # whole or not at all: a reader polls for it
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before the instructions: one who read
        loop.add_signal_handler(signum, stop.set)  # them may stop it at once
    say(instructions(fake, options))
    shown = 0
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_S)
            if options.quiet:
                fake.sent.clear()
                continue
            for message in fake.sent[shown:]:
                say(arrival(message))
            shown = len(fake.sent)
            if fake.errors:
                for error in fake.errors:
                    say(f"fake telegram error (a bug in the fake): {error!r}")
                fake.errors.clear()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await fake.stop()
