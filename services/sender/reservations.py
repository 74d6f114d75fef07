"""Send reservations and pacing: whether a step's send may go out now, later or never.

A batch's sends are paced in batch order per account, each seeing the sends reserved before it
(`Pace` carries the account's pace through the batch); `pace_send` decides without I/O. What
the decisions need is read first (`gather`: the accounts locked, the known peers, the send
records written before), and what they reserved is written last (`claim`: the new send records
and each account's pace), in the step's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from services.sender.gateway import Account
from services.sender.staging import (
    Loaded,
    PendingSend,
    Plan,
    peer_at,
    random_id_for,
    send_key,
    stage,
)
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import interpreter, reach
from shared.domain.accounts import AccountHealth
from shared.domain.breaker import PAUSED_RECHECK
from shared.domain.pacing import AccountPace, CannotSend, Pacing, next_send_at
from shared.domain.recipient_zones import next_send_moment
from shared.domain.windows import Window

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


@dataclass
class Pace:
    """An account as the batch's sends find it: locked, its pace moving with each reservation."""

    row: asyncpg.Record
    pacing: Pacing
    last_send_at: datetime | None
    sent_today: int
    quota_day: Any
    new_peers: int = 0  # reserved in this batch
    reserved: bool = False

    def pace(self, today: date) -> AccountPace:
        account = self.row
        return AccountPace(
            health=AccountHealth(account["health_status"]),
            cooldown_until=account["cooldown_until"],
            last_send_at=self.last_send_at,
            new_peers_today=self.sent_today if self.quota_day == today else 0,
            warming_days=(today - account["created_at"].date()).days,
            flood_today=account["flood_on"] == today,
        )

    def reserve(self, now: datetime, today: date, new_peer: bool) -> None:
        """reserve_sends's effect, so the next send of the batch sees it."""
        self.sent_today = (self.sent_today if self.quota_day == today else 0) + int(new_peer)
        self.quota_day, self.last_send_at = today, now
        self.new_peers += int(new_peer)
        self.reserved = True


@dataclass
class Reservations:
    """What pacing a batch's sends reads: each account's pace, the (account, contact) pairs
    already talked to, and the send records written before, by send key."""

    paces: dict[UUID, Pace] = field(default_factory=dict)
    known: set[tuple[UUID, UUID]] = field(default_factory=set)
    records: dict[str, asyncpg.Record] = field(default_factory=dict)


class Claim(NamedTuple):
    """A send reserved by pace_send, its record to be claimed."""

    loaded: Loaded
    step: interpreter.Step
    account: Pace
    send_key: str


async def gather(
    connection: DbConnection, sending: Sequence[tuple[Loaded, interpreter.Step]]
) -> Reservations:
    """Lock the accounts of these sends and read what pacing them needs."""
    found = Reservations()
    if not sending:
        return found
    account_ids = sorted({loaded.account_id for loaded, _ in sending})
    for account in await connection.fetch(QUERIES["lock_accounts"], account_ids):
        found.paces[account["id"]] = Pace(
            account,
            Pacing.from_settings(account["pacing"], account["daily_quota"]),
            account["last_send_at"],
            account["sent_today"],
            account["quota_day"],
        )
    pairs = list({(loaded.account_id, loaded.row.contact_id) for loaded, _ in sending})
    known = await connection.fetch(
        QUERIES["known_peers"], [a for a, _ in pairs], [c for _, c in pairs]
    )
    found.known = {(r["account_id"], r["contact_id"]) for r in known}
    keys = [send_key(loaded, step) for loaded, step in sending]
    found.records = {
        r["send_key"]: r for r in await connection.fetch(QUERIES["send_records"], keys)
    }
    return found


def refusal(
    loaded: Loaded, step: interpreter.Step, paces: dict[UUID, Pace], now: datetime
) -> reach.Skip | None:
    """May this step go on? Checked in the step's transaction, right before a send is
    reserved: the account row is locked (lock_accounts), and the execution's lock orders
    this step after a deletion that cancelled it. A deleted contact's execution stops
    whatever its step; a deleted account only stops sends."""
    row = loaded.row
    account_deleted = recent = False
    if isinstance(step.outcome, interpreter.Send):
        account_deleted = paces[loaded.account_id].row["deleted_at"] is not None
        recent = reach.recently_contacted(
            recontact_after_days=row.recontact_after_days,
            last_messaged_elsewhere=row.last_messaged_elsewhere,
            messaged_here=row.messaged_here,
            now=now,
        )
    return reach.refusal(
        contact_deleted=row.contact_deleted_at is not None,
        do_not_contact=row.do_not_contact,
        account_deleted=account_deleted,
        recently_contacted=recent,
    )


def pace_send(
    plan: Plan,
    loaded: Loaded,
    step: interpreter.Step,
    window: Window | None,
    reservations: Reservations,
    now: datetime,
    recipient_zone: str | None = None,
) -> Claim | None:
    """Pace one send, in batch order: defer it, fail it, move on from an answer already
    recorded, or reserve it (returned, for its record to be claimed). The window is read in
    `recipient_zone` when one is given (the campaign's `active_hours.in_recipient_zone`), else
    in the campaign's own zone."""
    row, outcome = loaded.row, step.outcome
    assert isinstance(outcome, interpreter.Send)
    account = reservations.paces[loaded.account_id]
    key = send_key(loaded, step)
    record = reservations.records.get(key)
    # A queued record is a send claimed before whose answer never came back (a crash, a
    # stall): its pace was reserved then, so it is sent again at once to learn its fate.
    resend = record is not None and record["status"] == "queued"
    new_peer = (loaded.account_id, row.contact_id) not in reservations.known
    today = now.date()
    try:
        moment = next_send_at(
            account.pacing,
            account.pace(today),
            now,
            new_peer=new_peer,
            key=key,
            reserved=resend,
        )
        if window is not None and not resend:
            moment = next_send_moment(window, moment, recipient_zone)
    except CannotSend as exc:
        # Its account is dead (banned, auth lost, a session conflict): interrupted, not failed
        # (issue 16), standing on this send, as the scheduler pauses the campaign's other
        # executions when the account's health event reaches it; a relaunch sends it.
        stage(plan, loaded, replace(step, outcome=outcome), now, interrupted=str(exc))
        return None
    if record is None and account.row["fleet_paused"] is not None:
        # The fleet breaker paused the sending of the account's context: a new send waits (not
        # failed, not paused for good) and is looked at again after PAUSED_RECHECK; it goes out
        # once the breaker has reset. A send already claimed (queued) goes again to learn its
        # fate, and a recorded answer is moved on from, as below.
        moment = max(moment, now + PAUSED_RECHECK)
    # Keep what the walk did up to the send (tags, the A/B choice), standing on the send.
    # The claim is held: the send below stays this step's until its answer is recorded
    # (deferring, or moving on from a recorded answer, releases it).
    standing = replace(step, outcome=outcome)
    if moment > now:
        stage(plan, loaded, standing, now, deferred_to=moment)
        return None
    stage(plan, loaded, standing, now, lease_until=row.lease_until)
    if record is not None and record["status"] != "queued":
        # Telegram's answer was recorded while the execution could not move on (it was
        # paused mid-send): move on now, from what was recorded.
        assert loaded.flow is not None
        event: interpreter.Event = interpreter.Sent(now)
        sends = loaded.sends + 1
        if record["status"] != "sent":
            event, sends = (
                interpreter.SendFailed(now, f"message {record['status']}"),
                loaded.sends,
            )
        after = interpreter.advance(loaded.flow, standing.state, event)
        stage(plan, loaded, after, now, sends=sends)
        return None
    if not resend:
        account.reserve(now, today, new_peer)
    return Claim(loaded, standing, account, key)


async def claim(
    connection: DbConnection,
    claims: Sequence[Claim],
    reservations: Reservations,
    now: datetime,
) -> list[PendingSend]:
    """Write the send records not written yet and the accounts' reserved pace; returns the
    sends to make after the commit."""
    records = reservations.records
    new = [c for c in claims if c.send_key not in records]
    if new:
        columns: list[list[Any]] = [[] for _ in range(9)]
        for loaded, step, account, key in new:
            row, outcome = loaded.row, step.outcome
            assert isinstance(outcome, interpreter.Send)
            values = (
                row.campaign_id,
                row.id,
                row.contact_id,
                account.row["id"],
                outcome.node_id,
                step.state.variant,
                outcome.text,
                key,
                random_id_for(key),
            )
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        inserted = await connection.fetch(QUERIES["claim_sends"], *columns)
        records = records | {r["send_key"]: r for r in inserted}
    pending: list[PendingSend] = []
    for loaded, step, account, key in claims:
        row, outcome = loaded.row, step.outcome
        assert isinstance(outcome, interpreter.Send)
        record = records.get(key)
        if record is None:  # pragma: no cover - the execution's lock makes the key ours
            raise RuntimeError(f"send record {key} was neither found nor written")
        gateway_account = Account(
            account.row["id"], account.row["session_kind"], account.row["simulation"]
        )
        pending.append(
            PendingSend(
                gateway_account,
                peer_at(row.contact_id, row.telegram_username, row.phone, row.telegram_user_id),
                record["id"],
                record["random_id"],
                outcome.text,
                row.id,
                account.pacing,
                row.campaign_id,
                UUID(outcome.attachment_id) if outcome.attachment_id else None,
            )
        )
    reserved = [pace for pace in reservations.paces.values() if pace.reserved]
    if reserved:
        await connection.execute(
            QUERIES["reserve_sends"],
            [pace.row["id"] for pace in reserved],
            now,
            now.date(),
            [pace.new_peers for pace in reserved],
        )
    return pending
