"""Telegram's answers to a committed batch's sends, each recorded after the step's transaction:
the sends Telegram accepted (sent, many in one transaction), and each failure in its own: what
it says of the message (failed, or unknown for a transient error) and of the account (a flood
wait, a limit, a lost login).

An answer moves only what still stands on its send record (issue 13): `mark_sent_many` returns
the records it changed, and only those move their executions; a failure changes the message
only while its record is queued, and the execution only while it stands on the record
(staging.stands_on). What it says of the account is the account's truth whatever else
happened. So a stalled sender's late answer, to a send another sender has since re-sent and
recorded, changes nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import Counter, Histogram

from services.sender import accounts, executions
from services.sender.gateway import (
    SEND_OUTCOMES,
    Account,
    AccountDead,
    AccountFrozen,
    AccountLimited,
    ContactPermanent,
    Delivery,
    Gateway,
    GatewayError,
    Media,
    Outgoing,
    RetryAfter,
    SendResult,
    Transient,
    send_all,
    send_outcome,
)
from services.sender.staging import (
    CampaignCache,
    Loaded,
    PendingSend,
    Plan,
    load,
    stage,
    stands_on,
)
from services.sender.writer import apply, save
from shared.db.pool import DbConnection
from shared.db.rows import ExecutionRow
from shared.db.sql import Queries
from shared.domain import interpreter
from shared.domain.accounts import AccountHealth
from shared.domain.clock import Clock
from shared.domain.executions import BETWEEN_STEPS
from shared.domain.pacing import Pacing
from shared.messaging.consumer import AFTER_COMMIT_FAILURES, INFRASTRUCTURE_ERRORS
from shared.messaging.contracts import MessageFailed, MessageSent
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic
from shared.messaging.transaction import transaction

log = logging.getLogger(__name__)
QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
TRANSIENT_BACKOFF_S = 30.0
RECORD_STREAMS = 2  # concurrent transactions recording a batch's accepted sends
RECORD_SPLIT_FROM = 100  # fewer accepted sends are recorded in one transaction

SENDS = Counter(
    "dripline_sends_total", "Messages handed to Telegram, by what came of it", ["outcome"]
)
# Every outcome's series exists from the start, so the first flood wait shows in rate().
_SENDS = {outcome: SENDS.labels(outcome) for outcome in SEND_OUTCOMES}
FLOOD_WAITS = Histogram(
    "dripline_telegram_flood_wait_seconds",
    "Flood waits Telegram imposed on sends: how long it asked the account to wait",
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 3600, 86400),
)


class Answers:
    """The network calls of committed sends, through one gateway, and what came of them."""

    def __init__(
        self, gateway: Gateway, pool: Callable[[], asyncpg.Pool[Any]], clock: Clock
    ) -> None:
        self.gateway = gateway
        self._get_pool = pool
        self.clock = clock
        self._media: dict[UUID, Media] = {}

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        return self._get_pool()

    async def send_batch(self, pending: Sequence[PendingSend], consumer: str = "sender") -> None:
        """The network calls of a committed batch, then their answers: the sends Telegram
        accepted are recorded in one transaction, each failure in its own (as before)."""
        media = await self.media({p.attachment_id for p in pending if p.attachment_id})
        outgoing = [
            Outgoing(
                p.account,
                p.peer,
                p.text,
                p.random_id,
                media[p.attachment_id] if p.attachment_id else None,
            )
            for p in pending
            if p.attachment_id is None or p.attachment_id in media
        ]
        sent = iter(await send_all(self.gateway, outgoing, self.clock))
        # A step naming an attachment that is gone fails, rather than going out without it.
        gone = ContactPermanent("the step's attachment no longer exists")
        results: list[SendResult] = [
            next(sent) if p.attachment_id is None or p.attachment_id in media else gone
            for p in pending
        ]
        for result in results:
            _SENDS[send_outcome(result)].inc()
            if isinstance(result, RetryAfter):
                FLOOD_WAITS.observe(result.seconds)
        accepted = [
            (item, result)
            for item, result in zip(pending, results, strict=True)
            if isinstance(result, Delivery)
        ]
        if accepted:
            # Recorded in a few transactions side by side (each campaign's in one, in order), so
            # the database works on one while this process prepares the next.
            streams: list[list[tuple[PendingSend, Delivery]]] = [[] for _ in range(RECORD_STREAMS)]
            for item, delivery in accepted:
                streams[hash(item.campaign_id) % RECORD_STREAMS].append((item, delivery))
            if len(accepted) < RECORD_SPLIT_FROM:
                streams = [accepted]
            await asyncio.gather(
                *(self._isolated(self.record_sent(s), consumer) for s in streams if s)
            )
        for item, result in zip(pending, results, strict=True):
            if isinstance(result, GatewayError):
                await self._isolated(
                    self.failed(
                        item.account, item.message_id, item.execution_id, result, item.pacing
                    ),
                    consumer,
                )
            elif result is None:  # logged by the gateway; the lease brings the send back
                AFTER_COMMIT_FAILURES.labels(consumer, Topic.EXECUTIONS_DUE.value).inc()

    async def media(self, ids: set[UUID]) -> dict[UUID, Media]:
        """The attachments these sends carry, read once per process (they never change)."""
        missing = [i for i in ids if i not in self._media]
        if missing:
            async with self.pool.acquire() as connection:
                rows = await connection.fetch(QUERIES["attachments"], missing)
            for row in rows:
                self._media[row["id"]] = Media(
                    row["id"], row["kind"], row["filename"], row["content_type"], row["data"]
                )
        return {i: self._media[i] for i in ids if i in self._media}

    @staticmethod
    async def _isolated(work: Any, consumer: str) -> None:
        """One piece of the work after the commit: its failure is logged and counted and does
        not stop the rest (what it did not finish, the lease recovers)."""
        try:
            await work
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception:
            AFTER_COMMIT_FAILURES.labels(consumer, Topic.EXECUTIONS_DUE.value).inc()
            log.exception("%s: recording an answer from Telegram failed", consumer)

    async def record_sent(self, accepted: list[tuple[PendingSend, Delivery]]) -> None:
        """Record the sends Telegram accepted and move their executions on. An answer moves only
        the execution its record belongs to, standing where the record left it (same node, same
        count of sends), and only when it changed the record: a late answer (a stalled sender's,
        after another sender re-sent and recorded the same message) changes nothing."""
        now = self.clock.now()
        async with transaction(self.pool, self.clock) as tx:
            connection, plan = tx.connection, Plan()
            # Executions first, then their records: the order the step's transaction takes.
            ids = list(dict.fromkeys(item.execution_id for item, _ in accepted))
            rows = await executions.lock_many(connection, ids)
            changed = await connection.fetch(
                QUERIES["mark_sent_many"],
                [item.message_id for item, _ in accepted],
                [delivery.telegram_message_id for _, delivery in accepted],
                [delivery.sent_at for _, delivery in accepted],
            )
            cache: CampaignCache = {}
            moved: set[UUID] = set()
            for record in changed:
                sent = MessageSent(
                    message_id=record["id"],
                    execution_id=record["execution_id"],
                    campaign_id=record["campaign_id"],
                    contact_id=record["contact_id"],
                    telegram_account_id=record["telegram_account_id"],
                    node_id=record["node_id"] or "",
                    variant=record["variant"],
                )
                plan.emit(sent, record["campaign_id"], now)
                row = rows.get(record["execution_id"])
                if row is None or row.status not in BETWEEN_STEPS:
                    continue
                loaded = load(row, cache)
                if loaded.flow is None or row.id in moved or not stands_on(loaded, record):
                    continue
                moved.add(row.id)
                step = interpreter.advance(loaded.flow, loaded.state, interpreter.Sent(now))
                stage(plan, loaded, step, now, sends=loaded.sends + 1)
            await apply(connection, tx.outbox, plan)

    async def failed(
        self,
        account: Account,
        message_id: UUID,
        execution_id: UUID,
        error: GatewayError,
        pacing: Pacing,
    ) -> None:
        """Apply a failed send's answer. What it says of the account (a flood wait, a limit, a
        lost login) is applied whatever else happened; what it says of the message applies only
        while the record is still queued, and it moves the execution only while the execution
        stands where the record left it: a late answer to a message another sender has since
        recorded changes neither."""
        now = self.clock.now()
        entered: AccountHealth | None = None
        async with transaction(self.pool, self.clock) as tx:
            connection, outbox = tx.connection, tx.outbox
            row = await executions.lock(connection, execution_id)
            assert row is not None
            record = await connection.fetchrow(QUERIES["lock_send_record"], message_id)
            open_ = record is not None and record["status"] == "queued"
            loaded = load(row)
            standing = (
                record is not None
                and open_
                and row.status in BETWEEN_STEPS
                and stands_on(loaded, record)
            )
            if not open_:
                log.info(
                    "a late answer (%s) to send %s, already %s: the message stays as recorded",
                    type(error).__name__,
                    message_id,
                    record["status"] if record is not None else "gone",
                )
            if isinstance(error, Transient):
                # Maybe sent, maybe not: the record stays; the next attempt resends with the
                # same random_id, which cannot produce a second message.
                if standing:
                    await connection.execute(
                        QUERIES["defer_execution"],
                        execution_id,
                        now + timedelta(seconds=TRANSIENT_BACKOFF_S),
                        1,
                        now,
                    )
                    _message_failed(outbox, row, account, message_id, "unknown", error.reason, now)
            elif isinstance(error, ContactPermanent):
                if open_:
                    await connection.execute(
                        QUERIES["mark_failed"], message_id, "contact_permanent", error.reason
                    )
                    _message_failed(
                        outbox, row, account, message_id, "contact_permanent", error.reason, now
                    )
                if standing and loaded.flow is not None:
                    step = interpreter.advance(
                        loaded.flow, loaded.state, interpreter.SendFailed(now, error.reason)
                    )
                    await save(connection, outbox, loaded, step, now)
            else:
                if open_:
                    await connection.execute(QUERIES["drop_send_record"], message_id)
                entered = await _account_failed(
                    connection,
                    outbox,
                    loaded,
                    account,
                    error,
                    pacing,
                    now,
                    dropped=open_,
                    standing=standing,
                )
        accounts.count_transitions([entered])


async def _account_failed(
    connection: DbConnection,
    outbox: Outbox,
    loaded: Loaded,
    account: Account,
    error: GatewayError,
    pacing: Pacing,
    now: datetime,
    *,
    dropped: bool,
    standing: bool,
) -> AccountHealth | None:
    """Apply an account's failure; returns the health status it entered, if it moved.
    `dropped`: the send record was deleted (the message's outcome changed, so it is said);
    `standing`: the execution stands on that send (so it waits with it, or, when the account is
    dead, is interrupted where it stands)."""
    entered: AccountHealth | None
    row = loaded.row
    if isinstance(error, (RetryAfter, AccountLimited)):
        await connection.execute(QUERIES["record_flood"], account.id, now.date())
    if isinstance(error, RetryAfter):
        until = now + timedelta(seconds=error.seconds + pacing.flood_margin_s)
        entered = await accounts.change_health(
            connection,
            outbox,
            account.id,
            AccountHealth.COOLDOWN,
            error.reason,
            now,
            cooldown_until=until,
        )
        if standing:
            await connection.execute(QUERIES["defer_execution"], row.id, until, 0, now)
        if dropped:
            # The statistics count a recorded but unsent message: its outcome changed.
            _message_failed(outbox, row, account, None, "account_limited", error.reason, now)
    elif isinstance(error, AccountLimited):
        # Due a check at once: @SpamBot confirms a limit, getAppConfig a freeze and its dates.
        frozen = isinstance(error, AccountFrozen)
        entered = await accounts.change_health(
            connection,
            outbox,
            account.id,
            AccountHealth.FROZEN if frozen else AccountHealth.LIMITED,
            error.reason,
            now,
            next_check_at=now,
        )
        if standing:
            later = now + timedelta(seconds=pacing.limited_retry_s)
            await connection.execute(QUERIES["defer_execution"], row.id, later, 0, now)
        if dropped:
            _message_failed(outbox, row, account, None, "account_limited", error.reason, now)
    elif isinstance(error, AccountDead):
        health = AccountHealth(error.kind)
        entered = await accounts.change_health(
            connection, outbox, account.id, health, error.reason, now
        )
        if standing:
            # Interrupted, not failed (issue 16): paused where it stands, so a relaunch of its
            # campaign (failed by this account's health event) continues it at this same send.
            reason = f"Telegram account {health.value.replace('_', ' ')}: {error.reason}"
            await connection.execute(QUERIES["interrupt_execution"], row.id, reason, now)
        if dropped:
            _message_failed(outbox, row, account, None, "account_dead", error.reason, now)
    else:  # pragma: no cover - the gateway raises only the five categories
        raise error
    return entered


def _message_failed(
    outbox: Outbox,
    row: ExecutionRow,
    account: Account,
    message_id: UUID | None,
    code: str,
    reason: str,
    now: datetime,
) -> None:
    event = MessageFailed(
        message_id=message_id,
        execution_id=row.id,
        campaign_id=row.campaign_id,
        contact_id=row.contact_id,
        telegram_account_id=account.id,
        node_id=row.current_node_id,
        code=code,
        reason=reason,
    )
    outbox.emit(event, key=row.campaign_id, at=now)
