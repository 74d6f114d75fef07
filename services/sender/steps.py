"""One step of one execution: load it, ask the interpreter, act, save, emit.

A due event is handled in the consumer's transaction. If the step is a send, that transaction
writes the send record (unique key: execution, node, how many sends before) and reserves the
account's pace; the network call runs after the commit; a second transaction records what
Telegram said and moves the execution on. If the process dies in between, the lease runs out,
the scheduler emits the execution again, and the step finds its send record: it is sent again
with the same random_id, which Telegram (and the simulator) deduplicate, so it is reconciled,
never sent twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from services.sender import accounts
from services.sender.gateway import (
    Account,
    AccountDead,
    AccountLimited,
    ContactPermanent,
    Gateway,
    GatewayError,
    Peer,
    RetryAfter,
    Transient,
)
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import flows, interpreter
from shared.domain.accounts import AccountHealth
from shared.domain.clock import Clock
from shared.domain.pacing import AccountPace, CannotSend, Pacing, next_send_at
from shared.domain.windows import Window, next_allowed
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    Decoded,
    ExecutionDue,
    ExecutionProgressed,
    MessageFailed,
    MessageSent,
    MessageType,
    Payload,
)
from shared.messaging.envelope import new_envelope
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic

log = logging.getLogger(__name__)
QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))
UNFINISHED = ("pending", "waiting")
TRANSIENT_BACKOFF_S = 30.0


def emit(
    outbox: Outbox, topic: Topic, key: UUID, type_: MessageType, payload: Payload, now: datetime
) -> None:
    outbox.add(
        topic, str(key), new_envelope(type=type_, payload=payload, occurred_at=now, actor=None)
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


@dataclass(frozen=True)
class Loaded:
    row: asyncpg.Record
    flow: flows.Flow | None
    problem: str | None
    state: interpreter.ExecutionState
    sends: int

    @property
    def flow_context(self) -> dict[str, Any]:
        return self.context_of(self.state, self.sends)

    @staticmethod
    def context_of(state: interpreter.ExecutionState, sends: int) -> dict[str, Any]:
        return {
            "wait_until": _iso(state.wait_until),
            "last_sent_at": _iso(state.last_sent_at),
            "replied_at": _iso(state.replied_at),
            "tags": sorted(state.tags),
            "sends": sends,
        }


def load(row: asyncpg.Record) -> Loaded:
    flow, problems = flows.validate(row["flow"])
    saved: Mapping[str, Any] = row["context"].get("flow", {})
    values: dict[str, Any] = {k: v for k, v in (row["custom_fields"] or {}).items()}
    for name in ("first_name", "last_name", "telegram_username", "phone"):
        values[name] = row[name]
    values["username"] = row["telegram_username"]
    state = interpreter.ExecutionState(
        execution_key=str(row["contact_id"]),
        node_id=row["current_node_id"],
        values=values,
        tags=frozenset(saved.get("tags", row["contact_tags"] or [])),
        wait_until=_time(saved.get("wait_until")),
        last_sent_at=_time(saved.get("last_sent_at")),
        replied_at=_time(saved.get("replied_at")),
        variant=row["variant"],
    )
    problem = "; ".join(p.message for p in problems[:3]) if flow is None else None
    return Loaded(row, flow, problem, state, int(saved.get("sends", 0)))


def peer_of(row: asyncpg.Record) -> Peer:
    if row["telegram_username"]:
        return Peer(row["telegram_username"], row["contact_id"], "username")
    if row["phone"]:
        return Peer(row["phone"], row["contact_id"], "phone")
    return Peer(str(row["telegram_user_id"]), row["contact_id"], "user_id")


def random_id_for(send_key: str) -> int:
    """Telegram's random_id for this send: stable per send record, positive 63 bits."""
    return int.from_bytes(hashlib.sha256(send_key.encode()).digest()[:8], "big") >> 1


async def save(
    connection: DbConnection,
    outbox: Outbox,
    loaded: Loaded,
    step: interpreter.Step,
    now: datetime,
    *,
    sends: int | None = None,
    lease_until: datetime | None = None,
) -> None:
    """Apply an interpreter step: the execution's new status and state, logs, tags, events.
    The claim is released unless `lease_until` keeps it (a send in flight)."""
    row = loaded.row
    outcome = step.outcome
    status: str = "pending"
    next_at: datetime | None = now
    completed_at: datetime | None = None
    error: str | None = None
    match outcome:
        case interpreter.Wait(until=until):
            status, next_at = "waiting", until
        case interpreter.Complete():
            status, next_at, completed_at = "completed", None, now
        case interpreter.Fail(reason=reason):
            status, next_at, completed_at, error = "failed", None, now, reason
        case interpreter.Stay():
            status, next_at = row["status"], row["next_execution_at"]
        case interpreter.Send():
            status, next_at = "pending", now  # the next send: due at once, paced by the sender
    flow_context = Loaded.context_of(step.state, loaded.sends if sends is None else sends)
    await connection.execute(
        QUERIES["save_execution"],
        row["id"],
        status,
        step.state.node_id,
        next_at,
        flow_context,
        step.state.variant,
        now,
        completed_at,
        error,
        lease_until,
    )
    visits = [
        v
        for v in step.visited
        if not (
            isinstance(outcome, interpreter.Send)
            and v.node_id == outcome.node_id
            and v.detail == "send"
        )
    ]
    if isinstance(outcome, interpreter.Fail):
        visits.append(interpreter.Visit(outcome.node_id or "", flows.NodeType.END, outcome.reason))
    if visits:
        await connection.execute(
            QUERIES["write_logs"],
            row["campaign_id"],
            row["id"],
            row["contact_id"],
            now,
            [v.node_id for v in visits],
            [v.node_type.value for v in visits],
            [
                "node_executed"
                if not isinstance(outcome, interpreter.Fail) or v is not visits[-1]
                else "execution_failed"
                for v in visits
            ],
            [
                "ok"
                if not isinstance(outcome, interpreter.Fail) or v is not visits[-1]
                else "failed"
                for v in visits
            ],
            [v.detail for v in visits],
        )
    if step.tags_added or step.tags_removed:
        await connection.execute(
            QUERIES["set_contact_tags"], row["contact_id"], sorted(step.state.tags), now
        )
    if status != row["status"] or step.state.node_id != row["current_node_id"]:
        event = ExecutionProgressed(
            execution_id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            previous_status=row["status"],
            status=status,
            node_id=step.state.node_id,
            detail=error or (visits[-1].detail if visits else ""),
        )
        emit(
            outbox,
            Topic.EXECUTION_EVENTS,
            row["campaign_id"],
            MessageType.EXECUTION_PROGRESSED,
            event,
            now,
        )


def active_hours(row: asyncpg.Record) -> Window | None:
    """The campaign's sending window (settings.active_hours) in its time zone, if it has one."""
    raw = (row["settings"] or {}).get("active_hours")
    if not raw:
        return None
    return Window(
        timezone=row["timezone"],
        days=frozenset(raw.get("days") or range(1, 8)),
        start=time.fromisoformat(raw["start"]) if raw.get("start") else None,
        end=time.fromisoformat(raw["end"]) if raw.get("end") else None,
    )


def runnable(row: asyncpg.Record | None, due: ExecutionDue | None) -> bool:
    if row is None or row["status"] not in UNFINISHED:
        return False
    if row["campaign_status"] != "active" or not row["campaign_enabled"]:
        return False
    if row["campaign_deleted_at"] is not None or row["account_id"] is None:
        return False
    # A stale event (an older claim) is ignored; the current claim's event moves it.
    return due is None or due.lease_until is None or row["lease_until"] == due.lease_until


class Steps:
    """The due handler and what follows a send, around one gateway."""

    def __init__(
        self, gateway: Gateway, pool: Callable[[], asyncpg.Pool[Any]], clock: Clock
    ) -> None:
        self.gateway = gateway
        self._get_pool = pool
        self.clock = clock

    @property
    def pool(self) -> asyncpg.Pool[Any]:
        return self._get_pool()

    async def on_due(self, context: HandlerContext, message: Decoded) -> None:
        due = message.payload
        assert isinstance(due, ExecutionDue)
        connection, now = context.connection, context.clock.now()
        row = await connection.fetchrow(QUERIES["lock_execution"], due.execution_id)
        if not runnable(row, due):
            return
        assert row is not None
        loaded = load(row)
        if loaded.flow is None:
            step = interpreter.Step(
                interpreter.Fail(row["current_node_id"], f"invalid flow: {loaded.problem}"),
                loaded.state,
            )
            await save(connection, context.outbox, loaded, step, now)
            return
        step = interpreter.advance(loaded.flow, loaded.state, interpreter.Due(now))
        if isinstance(step.outcome, interpreter.Send):
            await self._prepare_send(context, loaded, step, now)
        else:
            await save(connection, context.outbox, loaded, step, now)

    async def _prepare_send(
        self, context: HandlerContext, loaded: Loaded, step: interpreter.Step, now: datetime
    ) -> None:
        connection, row = context.connection, loaded.row
        outcome = step.outcome
        assert isinstance(outcome, interpreter.Send)
        account = await connection.fetchrow(QUERIES["lock_account"], row["account_id"])
        assert account is not None
        send_key = f"{row['id']}:{outcome.node_id}:{loaded.sends}"
        new_peer = not await connection.fetchval(
            QUERIES["known_peer"], account["id"], row["contact_id"]
        )
        today = now.date()
        pace = AccountPace(
            health=AccountHealth(account["health_status"]),
            cooldown_until=account["cooldown_until"],
            last_send_at=account["last_send_at"],
            new_peers_today=account["sent_today"] if account["quota_day"] == today else 0,
            warming_days=(today - account["created_at"].date()).days,
            flood_today=account["flood_on"] == today,
        )
        pacing = Pacing.from_settings(account["pacing"], account["daily_quota"])
        try:
            moment = next_send_at(pacing, pace, now, new_peer=new_peer, key=send_key)
            window = active_hours(row)
            if window is not None:
                moment = next_allowed(window, moment)
        except CannotSend as exc:
            failed = interpreter.Step(
                interpreter.Fail(outcome.node_id, str(exc)), step.state, step.visited
            )
            await save(connection, context.outbox, loaded, failed, now)
            return
        # Keep what the walk did up to the send (tags, the A/B choice), standing on the send.
        # The claim is held: the send below stays this step's until its answer is recorded
        # (deferring, or moving on from a recorded answer, releases it).
        standing = replace(step, outcome=interpreter.Send(outcome.node_id, outcome.text))
        await save(
            connection, context.outbox, loaded, standing, now, lease_until=row["lease_until"]
        )
        if moment > now:
            await connection.execute(QUERIES["defer_execution"], row["id"], moment, 0, now)
            return
        await connection.execute(
            QUERIES["claim_send"],
            row["campaign_id"],
            row["id"],
            row["contact_id"],
            account["id"],
            outcome.node_id,
            step.state.variant,
            outcome.text,
            send_key,
            random_id_for(send_key),
        )
        record = await connection.fetchrow(QUERIES["send_record"], send_key)
        assert record is not None
        if record["status"] != "queued":
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
            await save(connection, context.outbox, loaded, after, now, sends=sends)
            return
        await connection.execute(
            QUERIES["reserve_send"], account["id"], now, today, 1 if new_peer else 0
        )
        gateway_account = Account(account["id"], account["session_kind"], account["simulation"])
        peer = peer_of(row)

        async def send() -> None:
            await self.send(
                gateway_account,
                peer,
                record["id"],
                record["random_id"],
                outcome.text,
                row["id"],
                pacing,
            )

        context.after_commit.append(send)

    async def send(
        self,
        account: Account,
        peer: Peer,
        message_id: UUID,
        random_id: int,
        text: str,
        execution_id: UUID,
        pacing: Pacing,
    ) -> None:
        try:
            delivery = await self.gateway.send(account, peer, text, random_id, self.clock.now())
        except GatewayError as error:
            await self._failed(account, message_id, execution_id, error, pacing)
            return
        now = self.clock.now()
        async with self.pool.acquire() as connection, connection.transaction():
            outbox = Outbox()
            await connection.execute(
                QUERIES["mark_sent"], message_id, delivery.telegram_message_id, delivery.sent_at
            )
            row = await connection.fetchrow(QUERIES["lock_execution"], execution_id)
            if row is not None and row["status"] in UNFINISHED:
                loaded = load(row)
                if loaded.flow is not None:
                    step = interpreter.advance(loaded.flow, loaded.state, interpreter.Sent(now))
                    await save(connection, outbox, loaded, step, now, sends=loaded.sends + 1)
                sent = MessageSent(
                    message_id=message_id,
                    execution_id=execution_id,
                    campaign_id=row["campaign_id"],
                    contact_id=row["contact_id"],
                    telegram_account_id=account.id,
                    node_id=row["current_node_id"] or "",
                    variant=row["variant"],
                )
                emit(
                    outbox,
                    Topic.EXECUTION_EVENTS,
                    row["campaign_id"],
                    MessageType.MESSAGE_SENT,
                    sent,
                    now,
                )
            await outbox.flush(connection)

    async def _failed(
        self,
        account: Account,
        message_id: UUID,
        execution_id: UUID,
        error: GatewayError,
        pacing: Pacing,
    ) -> None:
        now = self.clock.now()
        async with self.pool.acquire() as connection, connection.transaction():
            outbox = Outbox()
            row = await connection.fetchrow(QUERIES["lock_execution"], execution_id)
            assert row is not None
            if isinstance(error, Transient):
                # Maybe sent, maybe not: the record stays; the next attempt resends with the
                # same random_id, which cannot produce a second message.
                await connection.execute(
                    QUERIES["defer_execution"],
                    execution_id,
                    now + timedelta(seconds=TRANSIENT_BACKOFF_S),
                    1,
                    now,
                )
            elif isinstance(error, ContactPermanent):
                await connection.execute(
                    QUERIES["mark_failed"], message_id, "contact_permanent", error.reason
                )
                loaded = load(row)
                if loaded.flow is not None and row["status"] in UNFINISHED:
                    step = interpreter.advance(
                        loaded.flow, loaded.state, interpreter.SendFailed(now, error.reason)
                    )
                    await save(connection, outbox, loaded, step, now)
                self._message_failed(
                    outbox, row, account, message_id, "contact_permanent", error.reason, now
                )
            else:
                await connection.execute(QUERIES["drop_send_record"], message_id)
                await self._account_failed(connection, outbox, row, account, error, pacing, now)
            await outbox.flush(connection)

    async def _account_failed(
        self,
        connection: DbConnection,
        outbox: Outbox,
        row: asyncpg.Record,
        account: Account,
        error: GatewayError,
        pacing: Pacing,
        now: datetime,
    ) -> None:
        if isinstance(error, (RetryAfter, AccountLimited)):
            await connection.execute(QUERIES["record_flood"], account.id, now.date())
        if isinstance(error, RetryAfter):
            until = now + timedelta(seconds=error.seconds + pacing.flood_margin_s)
            await accounts.change_health(
                connection,
                outbox,
                account.id,
                AccountHealth.COOLDOWN,
                error.reason,
                now,
                cooldown_until=until,
            )
            await connection.execute(QUERIES["defer_execution"], row["id"], until, 0, now)
        elif isinstance(error, AccountLimited):
            await accounts.change_health(
                connection, outbox, account.id, AccountHealth.LIMITED, error.reason, now
            )
            later = now + timedelta(seconds=pacing.limited_retry_s)
            await connection.execute(QUERIES["defer_execution"], row["id"], later, 0, now)
        elif isinstance(error, AccountDead):
            health = AccountHealth(error.kind)
            await accounts.change_health(connection, outbox, account.id, health, error.reason, now)
            loaded = load(row)
            reason = f"Telegram account {health.value.replace('_', ' ')}: {error.reason}"
            step = interpreter.Step(interpreter.Fail(row["current_node_id"], reason), loaded.state)
            await save(connection, outbox, loaded, step, now)
            self._message_failed(outbox, row, account, None, "account_dead", error.reason, now)
        else:  # pragma: no cover - the gateway raises only the five categories
            raise error

    @staticmethod
    def _message_failed(
        outbox: Outbox,
        row: asyncpg.Record,
        account: Account,
        message_id: UUID | None,
        code: str,
        reason: str,
        now: datetime,
    ) -> None:
        event = MessageFailed(
            message_id=message_id,
            execution_id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            telegram_account_id=account.id,
            node_id=row["current_node_id"],
            code=code,
            reason=reason,
        )
        emit(
            outbox,
            Topic.EXECUTION_EVENTS,
            row["campaign_id"],
            MessageType.MESSAGE_FAILED,
            event,
            now,
        )
