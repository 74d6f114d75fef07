"""The Telegram gateway: one interface, two adapters (the simulator and Telethon).

Every failure a gateway reports is one of five categories (TELEGRAM.md, "Errors"); the sender
decides what each means for the execution and the account.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable
from uuid import UUID

from shared.db.pool import DbConnection
from shared.domain.clock import Clock

log = logging.getLogger(__name__)


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
    """The account may not message strangers for now (peer flood, restricted; @SpamBot says
    so, until a date when it gives one)."""

    def __init__(self, reason: str, until: datetime | None = None) -> None:
        super().__init__(reason)
        self.until = until


class AccountFrozen(AccountLimited):
    """Telegram froze the account (FROZEN_METHOD_INVALID, help.getAppConfig's freeze): it may
    not send at all until the freeze ends or an appeal succeeds."""

    def __init__(
        self, reason: str, until: datetime | None = None, appeal_url: str | None = None
    ) -> None:
        super().__init__(reason, until)
        self.appeal_url = appeal_url


class AccountDead(GatewayError):
    """The session is gone, used from two places at once (session_conflict) or the account
    banned: a person must act."""

    def __init__(
        self, reason: str, kind: Literal["auth_lost", "session_conflict", "banned"]
    ) -> None:
        super().__init__(reason)
        self.kind = kind


class Transient(GatewayError):
    """A network or server hiccup; the send may or may not have happened."""


class ProxyUnreachable(Transient):
    """The account's proxy cannot be reached or refused the tunnel to Telegram: nothing was
    sent, and nothing is wrong with the account; it is disconnected and retried. The reason
    starts with `proxy_unreachable:`, the health detail an operator reads."""


class SessionElsewhere(Transient):
    """Another sender holds the account's session (its advisory lock): that sender sends for
    it and checks it; this one leaves it alone (the account is not disconnected)."""


@dataclass(frozen=True)
class Account:
    id: UUID
    session_kind: str
    simulation: dict[str, Any]


@dataclass(frozen=True)
class Peer:
    """Who to write to; `key` is the form the gateway resolves (username, phone or user id).
    Kind `self` is the account itself (its Saved Messages, InputPeerSelf): a test send goes
    there, and `contact_id` is then the contact it was rendered for, not a recipient."""

    key: str
    contact_id: UUID
    kind: Literal["username", "phone", "user_id", "self"] = "username"


def saved_messages(contact_id: UUID) -> Peer:
    """The account's own Saved Messages, for a test send rendered for `contact_id`."""
    return Peer("me", contact_id, "self")


@dataclass(frozen=True)
class Media:
    """A photo or document sent with the text as its caption (table attachments). Its id is
    stable, so an adapter may upload the bytes once per account and reuse the reference."""

    id: UUID
    kind: Literal["photo", "document"]
    filename: str
    content_type: str
    data: bytes = field(repr=False)


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


@dataclass(frozen=True)
class Outgoing:
    """One message to send, as `Gateway.send` takes it."""

    account: Account
    peer: Peer
    text: str
    random_id: int
    media: Media | None = None


# What one send came to: accepted (possibly a duplicate), one of the five failures, or None if
# the adapter broke unexpectedly (logged; the send's fate is unknown, so its record stays
# queued and the lease brings it back with the same random_id).
SendResult = Delivery | GatewayError | None

# What a send came to, as dripline_sends_total counts it: accepted (first time, or a resend
# Telegram recognized by its random_id), one of the five failure categories (a dead account
# split by kind), or unknown (the adapter broke).
SEND_OUTCOMES = ("sent", "duplicate", "flood_wait", "contact_permanent", "account_limited",
                 "account_frozen", "auth_lost", "session_conflict", "banned", "transient",
                 "unknown")  # fmt: skip


def send_outcome(result: SendResult) -> str:
    match result:
        case Delivery(duplicate=True):
            return "duplicate"
        case Delivery():
            return "sent"
        case RetryAfter():
            return "flood_wait"
        case ContactPermanent():
            return "contact_permanent"
        case AccountFrozen():
            return "account_frozen"
        case AccountLimited():
            return "account_limited"
        case AccountDead(kind=kind):
            return kind
        case Transient():
            return "transient"
    return "unknown"


class Gateway(Protocol):
    async def send(
        self,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        """Send once per random_id: a repeated random_id returns the first delivery marked
        duplicate, never a second message (Telegram deduplicates random_id the same way).
        With `media`, the photo or document goes with the text as its caption."""
        ...

    async def probe(self, account: Account, now: datetime, *, ask_spambot: bool = False) -> None:
        """Raise the account's failure, if it has one (AccountFrozen for a freeze). With
        `ask_spambot`, also ask whether it is limited (AccountLimited, with the release date
        when one is given): a plain probe succeeds on a limited account, so only this lifts
        a limit."""
        ...

    async def updates(self, connection: DbConnection, now: datetime) -> list[Incoming]:
        """Replies and reads that have arrived, each returned once (in the caller's
        transaction, so a crash before it commits returns them again)."""
        ...

    async def read_history(self, account: Account, peer: Peer, now: datetime) -> None:
        """Mark the peer's messages to the account as read (Telegram's read receipt,
        messages.readHistory): the inbox's "mark as read" (docs/inbox.md)."""
        ...


@runtime_checkable
class SendsMany(Protocol):
    async def send_many(self, sends: Sequence[Outgoing], clock: Clock) -> list[SendResult]:
        """`send` for each, in order, with the same semantics per message (one message per
        random_id), the answers in the same order; a failure is returned, not raised."""
        ...


async def send_all(gateway: Gateway, sends: Sequence[Outgoing], clock: Clock) -> list[SendResult]:
    """Send these through the gateway's batch send if it has one, else one `send` at a time
    (each at the clock's time when it goes, as the per-message sender always did)."""
    if isinstance(gateway, SendsMany):
        return await gateway.send_many(sends, clock)
    results: list[SendResult] = []
    stopped: dict[UUID, GatewayError] = {}
    for item in sends:
        halted = stopped.get(item.account.id)
        if halted is not None:
            # The account met a flood wait, a limit, a freeze or lost its session earlier in
            # this batch: its other sends are not tried (they wait or fail with it, as the
            # first did), so nothing goes out inside a cooldown or to a new peer when limited.
            results.append(halted)
            continue
        try:
            results.append(
                await gateway.send(
                    item.account, item.peer, item.text, item.random_id, clock.now(), item.media
                )
            )
        except GatewayError as error:
            results.append(error)
            if isinstance(error, (RetryAfter, AccountLimited, AccountDead)):
                stopped[item.account.id] = error
        except Exception:
            log.exception("sending %s through %s failed", item.random_id, type(gateway).__name__)
            results.append(None)
    return results


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
        self,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        return await self._for(account).send(account, peer, text, random_id, now, media)

    async def send_many(self, sends: Sequence[Outgoing], clock: Clock) -> list[SendResult]:
        results: list[SendResult] = [None] * len(sends)
        routed: dict[int, tuple[Gateway, list[int]]] = {}
        for index, item in enumerate(sends):
            try:
                adapter = self._for(item.account)
            except GatewayError as error:
                results[index] = error
                continue
            routed.setdefault(id(adapter), (adapter, []))[1].append(index)
        for adapter, indexes in routed.values():
            answers = await send_all(adapter, [sends[i] for i in indexes], clock)
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = answer
        return results

    async def probe(self, account: Account, now: datetime, *, ask_spambot: bool = False) -> None:
        await self._for(account).probe(account, now, ask_spambot=ask_spambot)

    async def read_history(self, account: Account, peer: Peer, now: datetime) -> None:
        await self._for(account).read_history(account, peer, now)

    async def updates(self, connection: DbConnection, now: datetime) -> list[Incoming]:
        found: list[Incoming] = []
        for adapter in self._adapters.values():
            found.extend(await adapter.updates(connection, now))
        return found
