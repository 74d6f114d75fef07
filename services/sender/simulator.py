"""A simulated Telegram, deterministic under a seed, with Telethon's error semantics.

Its behaviour is configured per account in telegram_accounts.simulation (JSON):

    {"seed": 7,
     "contacts": {"ada": {"reply_after_s": 30, "read_after_s": 5, "reply_text": "STOP"},
                  "ghost": {"deleted": true}, "shy": {"privacy_restricted": true}},
     "default": {"read_after_s": 5, "reply_ratio": 0.3, "reply_after_s": 60},
     "burst": {"sends": 20, "window_s": 60, "flood_wait_s": 30},
     "peer_flood_after": 40, "revoked_after": 100, "banned_after": 500}

Contacts are matched by the peer key the sender resolves (username, phone or user id); a
message to the account itself (a test send, peer kind `self`, recorded with peer "me") is
never read or answered. A
contact without its own entry replies with probability reply_ratio, decided by a hash of the
seed and the peer, so a run is repeatable. Its memory (what it accepted, when reads and replies
are due) is the simulator_messages table, as a real server's would survive our crashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from services.sender.gateway import (
    Account,
    AccountDead,
    AccountLimited,
    ContactPermanent,
    Delivery,
    GatewayError,
    Incoming,
    Media,
    Outgoing,
    Peer,
    RetryAfter,
    SendResult,
)
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.clock import Clock

QUERIES = Queries.load(Path(__file__).with_name("simulator.sql"))


def _fraction(seed: object, peer: str) -> float:
    digest = hashlib.sha256(f"{seed}:{peer}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def behaviour(simulation: dict[str, Any], peer: str) -> dict[str, Any]:
    """The contact's own entry, or the default one with the seeded reply draw applied."""
    own = simulation.get("contacts", {}).get(peer)
    if own is not None:
        return dict(own)
    default = dict(simulation.get("default", {}))
    ratio = default.pop("reply_ratio", None)
    if ratio is not None and _fraction(simulation.get("seed", 0), peer) >= ratio:
        default.pop("reply_after_s", None)
    return default


class SimulatedTelegram:
    def __init__(self, pool: Callable[[], asyncpg.Pool[Any]]) -> None:
        self._get_pool = pool  # the service's pool, which exists once the service has started

    @property
    def _pool(self) -> asyncpg.Pool[Any]:
        return self._get_pool()

    async def send(
        self,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        sim = account.simulation
        async with self._pool.acquire() as connection:
            known = await connection.fetchrow(QUERIES["find"], account.id, random_id)
            if known is not None:
                return Delivery(known["message_id"], known["sent_at"], duplicate=True)
            burst = sim.get("burst", {})
            window = timedelta(seconds=float(burst.get("window_s", 60)))
            day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
            counts: Any = _NO_COUNTS
            if _counts_matter(sim):  # an aggregate over the account's history: only if asked
                counts = await connection.fetchrow(
                    QUERIES["counts"], account.id, now - window, day_start, peer.key
                )
                assert counts is not None
            self._check_account(sim, counts["total"])
            # The account's own Saved Messages (a test send): nobody there reads or replies.
            contact = {} if peer.kind == "self" else behaviour(sim, peer.key)
            self._check_contact(contact)
            if burst and counts["recent"] >= int(burst.get("sends", 20)):
                raise RetryAfter(float(burst.get("flood_wait_s", 30)), "FloodWaitError")
            limit = sim.get("peer_flood_after")
            new_peer = peer.kind != "self" and not counts["known_peer"]
            if limit is not None and new_peer and counts["peers_today"] >= limit:
                raise AccountLimited("PeerFloodError: too many new peers today")
            read_at = _after(now, contact.get("read_after_s"))
            reply_at = _after(now, contact.get("reply_after_s"))
            message_id = await connection.fetchval(
                QUERIES["record"],
                account.id,
                random_id,
                peer.key,
                text,
                now,
                read_at,
                reply_at,
                media.id if media is not None else None,
            )
        return Delivery(message_id, now)

    async def send_many(self, sends: Sequence[Outgoing], clock: Clock) -> list[SendResult]:
        """`send` for each, at one moment, in one round trip for the usual case. An account whose
        configuration counts its history (bursts, peer floods, revocation or ban after n sends)
        is sent one message at a time, since each send changes what the next one meets."""
        now = clock.now()
        results: list[SendResult] = [None] * len(sends)
        one_by_one: list[int] = []
        accepted: list[tuple[int, dict[str, Any]]] = []
        refused: dict[int, GatewayError] = {}
        for index, item in enumerate(sends):
            sim = item.account.simulation
            if _counts_matter(sim):
                one_by_one.append(index)
                continue
            contact = behaviour(sim, item.peer.key)
            try:
                self._check_account(sim, 0)
                self._check_contact(contact)
            except GatewayError as error:
                refused[index] = error
                continue
            accepted.append((index, contact))
        async with self._pool.acquire() as connection:
            unanswered = list(refused)  # a random_id it already holds is a duplicate, not refused
            if accepted:
                rows = await connection.fetch(
                    QUERIES["record_many"],
                    [sends[i].account.id for i, _ in accepted],
                    [sends[i].random_id for i, _ in accepted],
                    [sends[i].peer.key for i, _ in accepted],
                    [sends[i].text for i, _ in accepted],
                    now,
                    [_after(now, contact.get("read_after_s")) for _, contact in accepted],
                    [_after(now, contact.get("reply_after_s")) for _, contact in accepted],
                    [_media_id(sends[i]) for i, _ in accepted],
                )
                recorded = {(r["account_id"], r["random_id"]): r["message_id"] for r in rows}
                for index, _ in accepted:
                    message_id = recorded.get((sends[index].account.id, sends[index].random_id))
                    if message_id is None:
                        unanswered.append(index)
                    else:
                        results[index] = Delivery(message_id, now)
            if unanswered:
                rows = await connection.fetch(
                    QUERIES["find_many"],
                    [sends[i].account.id for i in unanswered],
                    [sends[i].random_id for i in unanswered],
                )
                known = {(r["account_id"], r["random_id"]): r for r in rows}
                for index in unanswered:
                    row = known.get((sends[index].account.id, sends[index].random_id))
                    if row is not None:
                        results[index] = Delivery(row["message_id"], row["sent_at"], duplicate=True)
                    else:
                        results[index] = refused.get(index)  # None: unknown, left to the lease
        for index in one_by_one:
            item = sends[index]
            try:
                results[index] = await self.send(
                    item.account, item.peer, item.text, item.random_id, clock.now(), item.media
                )
            except GatewayError as error:
                results[index] = error
        return results

    @staticmethod
    def _check_contact(contact: dict[str, Any]) -> None:
        if contact.get("deleted"):
            raise ContactPermanent("InputUserDeactivatedError: the user was deleted")
        if contact.get("privacy_restricted"):
            raise ContactPermanent("UserPrivacyRestrictedError: privacy settings forbid it")

    @staticmethod
    def _check_account(sim: dict[str, Any], total: int) -> None:
        if sim.get("banned") or (
            sim.get("banned_after") is not None and total >= sim["banned_after"]
        ):
            raise AccountDead("UserDeactivatedBanError: the account is banned", "banned")
        if sim.get("revoked") or (
            sim.get("revoked_after") is not None and total >= sim["revoked_after"]
        ):
            raise AccountDead("SessionRevokedError: the session was revoked", "auth_lost")

    async def probe(self, account: Account, now: datetime, *, ask_spambot: bool = False) -> None:
        async with self._pool.acquire() as connection:
            total = await connection.fetchval(QUERIES["total"], account.id)
        self._check_account(account.simulation, total)
        if ask_spambot and account.simulation.get("peer_flood_after") is not None:
            # The simulated @SpamBot: a peer_flood_after limit counts new peers per day, so the
            # limit it reports ends at the next midnight (UTC).
            until = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            raise AccountLimited(f"@SpamBot (simulated): limited until {until.isoformat()}", until)

    async def read_history(self, account: Account, peer: Peer, now: datetime) -> None:
        """The simulated people do not see read receipts: the account's state decides, as for
        a send, whether the call would be accepted."""
        async with self._pool.acquire() as connection:
            total = await connection.fetchval(QUERIES["total"], account.id)
        self._check_account(account.simulation, total)

    async def updates(self, connection: DbConnection, now: datetime) -> list[Incoming]:
        rows = await connection.fetch(QUERIES["due_updates"], now)
        found: list[Incoming] = []
        for row in rows:
            if row["read_due"]:
                found.append(Incoming("read", row["account_id"], row["random_id"], row["read_at"]))
            if row["reply_due"]:
                found.append(
                    Incoming(
                        "reply",
                        row["account_id"],
                        row["random_id"],
                        row["reply_at"],
                        reply_text(row["simulation"] or {}, row["peer"]),
                    )
                )
        found.sort(key=lambda incoming: incoming.at)
        return found


DEFAULT_REPLY = "Thanks, sounds good"


def _media_id(item: Outgoing) -> UUID | None:
    return item.media.id if item.media is not None else None


def reply_text(simulation: dict[str, Any], peer: str) -> str:
    """What the contact writes back: its entry's (or the default entry's) reply_text, so a run
    can have someone opt out ("reply_text": "STOP")."""
    return str(behaviour(simulation, peer).get("reply_text", DEFAULT_REPLY))


_NO_COUNTS = {"total": 0, "recent": 0, "peers_today": 0, "known_peer": True}


def _counts_matter(sim: dict[str, Any]) -> bool:
    return any(key in sim for key in ("burst", "peer_flood_after", "revoked_after", "banned_after"))


def _after(now: datetime, seconds: float | int | str | None) -> datetime | None:
    if seconds is None:
        return None
    return now + timedelta(seconds=float(seconds))
