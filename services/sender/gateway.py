"""The Telegram gateway: one interface, two adapters (the simulator and Telethon).

Every failure a gateway reports is one of five categories (TELEGRAM.md, "Errors"); the sender
decides what each means for the execution and the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from shared.db.pool import DbConnection


class GatewayError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryAfter(GatewayError):
    """Wait this long before calling again (FLOOD_WAIT)."""

    def __init__(self, seconds: float, reason: str = "flood wait") -> None:
        super().__init__(f"{reason} of {seconds:g} s")
        self.seconds = seconds


class ContactPermanent(GatewayError):
    """This contact cannot be messaged (privacy, deleted, blocked, unknown username)."""


class AccountLimited(GatewayError):
    """The account may not message strangers for now (peer flood, restricted, frozen)."""


class AccountDead(GatewayError):
    """The session is gone or the account banned: a person must act."""

    def __init__(self, reason: str, kind: Literal["auth_lost", "banned"]) -> None:
        super().__init__(reason)
        self.kind = kind


class Transient(GatewayError):
    """A network or server hiccup; the send may or may not have happened."""


@dataclass(frozen=True)
class Account:
    id: UUID
    session_kind: str
    simulation: dict[str, Any]


@dataclass(frozen=True)
class Peer:
    """Who to write to; `key` is the form the gateway resolves (username, phone or user id)."""

    key: str
    contact_id: UUID
    kind: Literal["username", "phone", "user_id"] = "username"


@dataclass(frozen=True)
class Delivery:
    """Telegram accepted the message (sent); `duplicate` if this random_id had been sent before.
    The message id is None only for a duplicate whose first send cannot be found again."""

    telegram_message_id: int | None
    sent_at: datetime
    duplicate: bool = False


@dataclass(frozen=True)
class Incoming:
    """A reply or a read receipt, tied to the outgoing message it answers."""

    kind: Literal["reply", "read"]
    account_id: UUID
    random_id: int  # of our outgoing message
    at: datetime
    text: str = ""


class Gateway(Protocol):
    async def send(
        self, account: Account, peer: Peer, text: str, random_id: int, now: datetime
    ) -> Delivery:
        """Send once per random_id: a repeated random_id returns the first delivery marked
        duplicate, never a second message (Telegram deduplicates random_id the same way)."""
        ...

    async def probe(self, account: Account, now: datetime) -> None:
        """Raise the account's failure, if it has one."""
        ...

    async def updates(self, connection: DbConnection, now: datetime) -> list[Incoming]:
        """Replies and reads that have arrived, each returned once (in the caller's
        transaction, so a crash before it commits returns them again)."""
        ...


class Gateways:
    """Routes each account to the adapter of its session kind (simulated or telethon)."""

    def __init__(self, adapters: dict[str, Gateway]) -> None:
        self._adapters = adapters

    def _for(self, account: Account) -> Gateway:
        adapter = self._adapters.get(account.session_kind)
        if adapter is None:
            raise Transient(f"no gateway for {account.session_kind!r} accounts in this sender")
        return adapter

    async def send(
        self, account: Account, peer: Peer, text: str, random_id: int, now: datetime
    ) -> Delivery:
        return await self._for(account).send(account, peer, text, random_id, now)

    async def probe(self, account: Account, now: datetime) -> None:
        await self._for(account).probe(account, now)

    async def updates(self, connection: DbConnection, now: datetime) -> list[Incoming]:
        found: list[Incoming] = []
        for adapter in self._adapters.values():
            found.extend(await adapter.updates(connection, now))
        return found
