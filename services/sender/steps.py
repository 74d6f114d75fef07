"""One step of each execution: load it, ask the interpreter, act, save, emit.

A consumed batch of due events is handled in the consumer's transaction, set-based: the batch's
executions are locked and loaded in one query, the interpreter runs for each in Python, and the
writes of every step (executions, logs, tags, send records, the accounts' pace, events) go back
in a few statements. Each execution's step is atomic; the batch's steps share the transaction.

If a step is a send, that transaction writes the send record (unique key: execution, node, how
many sends before) and reserves the account's pace, executions of one account in batch order,
each seeing the sends reserved before it. The network calls run after the commit (the gateway
may take them all at once); a second transaction records what Telegram said for all of them and
moves their executions on. If the process dies in between, the lease runs out, the scheduler
emits the execution again, and the step finds its send record: it is sent again with the same
random_id, which Telegram (and the simulator) deduplicate, so it is reconciled, never sent twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from prometheus_client import Counter, Histogram

from services.sender import accounts
from services.sender.gateway import (
    SEND_OUTCOMES,
    Account,
    AccountDead,
    AccountLimited,
    ContactPermanent,
    Delivery,
    Gateway,
    GatewayError,
    Outgoing,
    Peer,
    RetryAfter,
    Transient,
    send_all,
    send_outcome,
)
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import flows, interpreter, reach
from shared.domain.accounts import AccountHealth
from shared.domain.clock import Clock
from shared.domain.pacing import AccountPace, CannotSend, Pacing, next_send_at
from shared.domain.windows import Window, next_allowed
from shared.messaging.consumer import (
    AFTER_COMMIT_FAILURES,
    INFRASTRUCTURE_ERRORS,
    HandlerContext,
    as_batch,
    takes_batches,
)
from shared.messaging.contracts import (
    Decoded,
    ExecutionDue,
    ExecutionProgressed,
    MessageFailed,
    MessageSent,
)
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic
from shared.messaging.transaction import transaction

log = logging.getLogger(__name__)
QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
# The execution a step runs on, in the shape `load` reads; updates.py locks it the same way.
EXECUTIONS = Queries.load(Path(__file__).with_name("executions.sql"))
UNFINISHED = ("pending", "waiting")
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


@dataclass(frozen=True)
class Campaign:
    """What the rows of one lock_due_executions query share per campaign, decoded once."""

    flow: flows.Flow | None
    problems: list[flows.Problem]
    window: Window | None


# Per query: the rows of one query see one version of each campaign.
CampaignCache = dict[UUID, Campaign]


def campaign_of(row: asyncpg.Record, cache: CampaignCache) -> Campaign:
    """The campaign of a lock_due_executions row."""
    known = cache.get(row["campaign_id"])
    if known is None:
        flow, problems = flows.validate(json.loads(row["flow_json"]))
        settings = json.loads(row["settings_json"]) if row["settings_json"] else None
        window = window_of(settings, row["timezone"])
        known = cache[row["campaign_id"]] = Campaign(flow, problems, window)
    return known


def load(row: asyncpg.Record, cache: CampaignCache | None = None) -> Loaded:
    """The row of lock_execution, or of lock_due_executions with the cache of its query."""
    if cache is None:
        flow, problems = flows.validate(row["flow"])
    else:
        campaign = campaign_of(row, cache)
        flow, problems = campaign.flow, campaign.problems
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


@dataclass
class Writes:
    """The writes of many executions' steps, gathered and then applied set-based in the caller's
    transaction. An execution saved twice keeps its last save (each save sets every column)."""

    executions: dict[UUID, tuple[Any, ...]] = field(default_factory=dict)
    logs: list[tuple[Any, ...]] = field(default_factory=list)
    tags: dict[UUID, tuple[list[str], datetime]] = field(default_factory=dict)
    skips: dict[UUID, tuple[Any, ...]] = field(default_factory=dict)  # sends not made
    dropped: list[UUID] = field(default_factory=list)  # their queued records

    async def flush(self, connection: DbConnection) -> None:
        if self.executions:
            columns = list(zip(*self.executions.values(), strict=True))
            await connection.execute(QUERIES["save_executions"], *columns)
        if self.skips:
            columns = list(zip(*self.skips.values(), strict=True))
            await connection.execute(QUERIES["skip_executions"], *columns)
        if self.dropped:
            await connection.execute(QUERIES["drop_send_records"], self.dropped)
        if self.logs:
            columns = list(zip(*self.logs, strict=True))
            await connection.execute(QUERIES["write_logs_many"], *columns)
        if self.tags:
            await connection.executemany(
                QUERIES["set_contact_tags"],
                [(contact, tags, now) for contact, (tags, now) in self.tags.items()],
            )
        self.executions.clear()
        self.logs.clear()
        self.tags.clear()
        self.skips.clear()
        self.dropped.clear()


def stage(
    writes: Writes,
    outbox: Outbox,
    loaded: Loaded,
    step: interpreter.Step,
    now: datetime,
    *,
    sends: int | None = None,
    lease_until: datetime | None = None,
    deferred_to: datetime | None = None,
) -> None:
    """Gather an interpreter step: the execution's new status and state, logs, tags, events.
    The claim is released unless `lease_until` keeps it (a send in flight); `deferred_to` puts
    a send off until then (pacing, active hours)."""
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
    if deferred_to is not None:
        next_at = deferred_to
    flow_context = Loaded.context_of(step.state, loaded.sends if sends is None else sends)
    writes.executions[row["id"]] = (
        row["id"],
        status,
        step.state.node_id,
        next_at,
        json.dumps(flow_context),
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
        # Logged under the node that failed (a send, usually), so the logs' node-type filter
        # finds it; END only when the failure belongs to no node.
        failed = loaded.flow.nodes.get(outcome.node_id or "") if loaded.flow else None
        node_type = failed.type if failed is not None else flows.NodeType.END
        visits.append(interpreter.Visit(outcome.node_id or "", node_type, outcome.reason))
    for v in visits:
        last_failed = isinstance(outcome, interpreter.Fail) and v is visits[-1]
        writes.logs.append(
            (
                row["campaign_id"],
                row["id"],
                row["contact_id"],
                v.node_id,
                v.node_type.value,
                "execution_failed" if last_failed else "node_executed",
                "failed" if last_failed else "ok",
                v.detail,
                now,
            )
        )
    if step.tags_added or step.tags_removed:
        writes.tags[row["contact_id"]] = (sorted(step.state.tags), now)
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
        outbox.emit(event, key=row["campaign_id"], at=now)


def skip(
    writes: Writes,
    outbox: Outbox,
    loaded: Loaded,
    step: interpreter.Step,
    refused: reach.Skip,
    record: asyncpg.Record | None,
    now: datetime,
) -> None:
    """Gather a step that may not go on (reach.refusal): nothing of the walk is kept, the
    execution stays where it stood and is cancelled or waits with the reason, the skip is logged
    under the node it stopped at, and a queued record of an ended execution's send goes."""
    row, outcome = loaded.row, step.outcome
    node_id = outcome.node_id if isinstance(outcome, interpreter.Send) else row["current_node_id"]
    node = loaded.flow.nodes.get(node_id or "") if loaded.flow is not None else None
    if refused.ends:
        status, next_at, completed_at = "cancelled", None, now
    else:
        # Due at once: dispatch leaves it until the campaign has a live account again.
        status, next_at, completed_at = "waiting", now, None
    reason = refused.reason.value
    writes.skips[row["id"]] = (row["id"], status, next_at, completed_at, reason, now)
    node_type = node.type.value if node is not None else flows.NodeType.END.value
    writes.logs.append(
        (
            row["campaign_id"],
            row["id"],
            row["contact_id"],
            node_id,
            node_type,
            "send_skipped",
            "skipped",
            reason,
            now,
        )
    )
    if refused.ends and record is not None and record["status"] == "queued":
        writes.dropped.append(record["id"])
    if status != row["status"]:
        event = ExecutionProgressed(
            execution_id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            previous_status=row["status"],
            status=status,
            node_id=row["current_node_id"],
            detail=reason,
        )
        outbox.emit(event, key=row["campaign_id"], at=now)


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
    """Apply one interpreter step at once (see `stage`)."""
    writes = Writes()
    stage(writes, outbox, loaded, step, now, sends=sends, lease_until=lease_until)
    await writes.flush(connection)


def active_hours(row: asyncpg.Record) -> Window | None:
    """The campaign's sending window (settings.active_hours) in its time zone, if it has one."""
    return window_of(row["settings"], row["timezone"])


def window_of(settings: Mapping[str, Any] | None, timezone: str) -> Window | None:
    raw = (settings or {}).get("active_hours")
    if not raw:
        return None
    return Window(
        timezone=timezone,
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


def _send_key(loaded: Loaded, step: interpreter.Step) -> str:
    """The send record's unique key: execution, node, how many sends before."""
    assert isinstance(step.outcome, interpreter.Send)
    return send_key_at(loaded.row["id"], step.outcome.node_id, loaded.sends)


def send_key_at(execution_id: UUID, node_id: str, sends: int) -> str:
    return f"{execution_id}:{node_id}:{sends}"


def stands_on(loaded: Loaded, record: asyncpg.Record) -> bool:
    """Does the execution stand where this send record left it: on the record's node, with the
    same count of sends before? Only then may the record's answer move it."""
    here = send_key_at(loaded.row["id"], loaded.row["current_node_id"] or "", loaded.sends)
    return bool(record["send_key"] == here)


@dataclass(frozen=True)
class PendingSend:
    """A send whose record is committed; the network call runs after the commit."""

    account: Account
    peer: Peer
    message_id: UUID
    random_id: int
    text: str
    execution_id: UUID
    pacing: Pacing
    campaign_id: UUID | None = None


@dataclass
class _Pace:
    """An account as the batch's sends find it: locked, its pace moving with each reservation."""

    row: asyncpg.Record
    pacing: Pacing
    last_send_at: datetime | None
    sent_today: int
    quota_day: Any
    new_peers: int = 0  # reserved in this batch
    reserved: bool = False

    def pace(self, today: Any) -> AccountPace:
        account = self.row
        return AccountPace(
            health=AccountHealth(account["health_status"]),
            cooldown_until=account["cooldown_until"],
            last_send_at=self.last_send_at,
            new_peers_today=self.sent_today if self.quota_day == today else 0,
            warming_days=(today - account["created_at"].date()).days,
            flood_today=account["flood_on"] == today,
        )

    def reserve(self, now: datetime, today: Any, new_peer: bool) -> None:
        """reserve_send's effect, so the next send of the batch sees it."""
        self.sent_today = (self.sent_today if self.quota_day == today else 0) + int(new_peer)
        self.quota_day, self.last_send_at = today, now
        self.new_peers += int(new_peer)
        self.reserved = True


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

    @takes_batches
    async def on_due(
        self,
        context: HandlerContext,
        message: Decoded[ExecutionDue] | Sequence[Decoded[ExecutionDue]],
    ) -> None:
        """Step the executions of these due events (one, or a batch's, in batch order)."""
        dues = [decoded.payload for decoded in as_batch(message)]
        if not dues:
            return
        connection, now = context.connection, context.clock.now()
        # Only executions whose lease is their event's are locked (and returned): the rest are
        # stale events, which runnable() would turn away anyway.
        locked = await connection.fetch(
            QUERIES["lock_due_executions"],
            [due.execution_id for due in dues],
            [due.lease_until for due in dues],
        )
        rows = {row["id"]: row for row in locked}
        cache: CampaignCache = {}
        # The interpreter first (pure), so what the sends need is fetched in one query each.
        stepped: list[tuple[Loaded, interpreter.Step]] = []
        taken: set[UUID] = set()
        for due in dues:
            row = rows.get(due.execution_id)
            if due.execution_id in taken or not runnable(row, due):
                continue
            assert row is not None
            taken.add(due.execution_id)
            loaded = load(row, cache)
            if loaded.flow is None:
                fail = interpreter.Fail(row["current_node_id"], f"invalid flow: {loaded.problem}")
                stepped.append((loaded, interpreter.Step(fail, loaded.state)))
            else:
                step = interpreter.advance(loaded.flow, loaded.state, interpreter.Due(now))
                stepped.append((loaded, step))
        sending = [
            (loaded, step) for loaded, step in stepped if isinstance(step.outcome, interpreter.Send)
        ]
        paces: dict[UUID, _Pace] = {}
        known: set[tuple[UUID, UUID]] = set()
        records: dict[str, asyncpg.Record] = {}
        if sending:
            account_ids = sorted({loaded.row["account_id"] for loaded, _ in sending})
            for account in await connection.fetch(QUERIES["lock_accounts"], account_ids):
                paces[account["id"]] = _Pace(
                    account,
                    Pacing.from_settings(account["pacing"], account["daily_quota"]),
                    account["last_send_at"],
                    account["sent_today"],
                    account["quota_day"],
                )
            pairs = list(
                {(loaded.row["account_id"], loaded.row["contact_id"]) for loaded, _ in sending}
            )
            found = await connection.fetch(
                QUERIES["known_peers"], [a for a, _ in pairs], [c for _, c in pairs]
            )
            known = {(r["account_id"], r["contact_id"]) for r in found}
            keys = [_send_key(loaded, step) for loaded, step in sending]
            records = {
                r["send_key"]: r for r in await connection.fetch(QUERIES["send_records"], keys)
            }
        writes, outbox = Writes(), context.outbox
        claims: list[tuple[Loaded, interpreter.Step, _Pace, str]] = []
        for loaded, step in stepped:
            refused = self._refusal(loaded, step, paces)
            if refused is not None:
                key = _send_key(loaded, step) if isinstance(step.outcome, interpreter.Send) else ""
                skip(writes, outbox, loaded, step, refused, records.get(key), now)
            elif isinstance(step.outcome, interpreter.Send):
                window = campaign_of(loaded.row, cache).window
                claim = self._pace_send(
                    writes, outbox, loaded, step, window, paces, known, records, now
                )
                if claim is not None:
                    claims.append(claim)
            else:
                stage(writes, outbox, loaded, step, now)
        pending: list[PendingSend] = []
        if claims:
            pending = await self._claim_sends(connection, claims, records)
            reserved = [pace for pace in paces.values() if pace.reserved]
            if reserved:
                await connection.execute(
                    QUERIES["reserve_sends"],
                    [pace.row["id"] for pace in reserved],
                    now,
                    now.date(),
                    [pace.new_peers for pace in reserved],
                )
        await writes.flush(connection)
        if pending:
            consumer = context.consumer

            async def send() -> None:
                await self.send_batch(pending, consumer)

            context.after_commit.append(send)

    @staticmethod
    def _refusal(
        loaded: Loaded, step: interpreter.Step, paces: dict[UUID, _Pace]
    ) -> reach.Skip | None:
        """May this step go on? Checked in the step's transaction, right before a send is
        reserved: the account row is locked (lock_accounts), and the execution's lock orders
        this step after a deletion that cancelled it. A deleted contact's execution stops
        whatever its step; a deleted account only stops sends."""
        row = loaded.row
        account_deleted = False
        if isinstance(step.outcome, interpreter.Send):
            account_deleted = paces[row["account_id"]].row["deleted_at"] is not None
        return reach.refusal(
            contact_deleted=row["contact_deleted_at"] is not None,
            do_not_contact=row["do_not_contact"],
            account_deleted=account_deleted,
        )

    def _pace_send(
        self,
        writes: Writes,
        outbox: Outbox,
        loaded: Loaded,
        step: interpreter.Step,
        window: Window | None,
        paces: dict[UUID, _Pace],
        known: set[tuple[UUID, UUID]],
        records: dict[str, asyncpg.Record],
        now: datetime,
    ) -> tuple[Loaded, interpreter.Step, _Pace, str] | None:
        """Pace one send, in batch order: defer it, fail it, move on from an answer already
        recorded, or reserve it (returned, for its record to be claimed)."""
        row, outcome = loaded.row, step.outcome
        assert isinstance(outcome, interpreter.Send)
        account = paces[row["account_id"]]
        send_key = _send_key(loaded, step)
        record = records.get(send_key)
        # A queued record is a send claimed before whose answer never came back (a crash, a
        # stall): its pace was reserved then, so it is sent again at once to learn its fate.
        resend = record is not None and record["status"] == "queued"
        new_peer = (row["account_id"], row["contact_id"]) not in known
        today = now.date()
        try:
            moment = next_send_at(
                account.pacing,
                account.pace(today),
                now,
                new_peer=new_peer,
                key=send_key,
                reserved=resend,
            )
            if window is not None and not resend:
                moment = next_allowed(window, moment)
        except CannotSend as exc:
            failed = interpreter.Step(
                interpreter.Fail(outcome.node_id, str(exc)), step.state, step.visited
            )
            stage(writes, outbox, loaded, failed, now)
            return None
        # Keep what the walk did up to the send (tags, the A/B choice), standing on the send.
        # The claim is held: the send below stays this step's until its answer is recorded
        # (deferring, or moving on from a recorded answer, releases it).
        standing = replace(step, outcome=interpreter.Send(outcome.node_id, outcome.text))
        if moment > now:
            stage(writes, outbox, loaded, standing, now, deferred_to=moment)
            return None
        stage(writes, outbox, loaded, standing, now, lease_until=row["lease_until"])
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
            stage(writes, outbox, loaded, after, now, sends=sends)
            return None
        if not resend:
            account.reserve(now, today, new_peer)
        return loaded, standing, account, send_key

    async def _claim_sends(
        self,
        connection: DbConnection,
        claims: list[tuple[Loaded, interpreter.Step, _Pace, str]],
        records: dict[str, asyncpg.Record],
    ) -> list[PendingSend]:
        """Write the send records not written yet; the sends to make after the commit."""
        new = [claim for claim in claims if claim[3] not in records]
        if new:
            columns: list[list[Any]] = [[] for _ in range(9)]
            for loaded, step, account, send_key in new:
                row, outcome = loaded.row, step.outcome
                assert isinstance(outcome, interpreter.Send)
                values = (
                    row["campaign_id"],
                    row["id"],
                    row["contact_id"],
                    account.row["id"],
                    outcome.node_id,
                    step.state.variant,
                    outcome.text,
                    send_key,
                    random_id_for(send_key),
                )
                for column, value in zip(columns, values, strict=True):
                    column.append(value)
            inserted = await connection.fetch(QUERIES["claim_sends"], *columns)
            records = records | {r["send_key"]: r for r in inserted}
        pending: list[PendingSend] = []
        for loaded, step, account, send_key in claims:
            row, outcome = loaded.row, step.outcome
            assert isinstance(outcome, interpreter.Send)
            record = records.get(send_key)
            if record is None:  # pragma: no cover - the execution's lock makes the key ours
                raise RuntimeError(f"send record {send_key} was neither found nor written")
            gateway_account = Account(
                account.row["id"], account.row["session_kind"], account.row["simulation"]
            )
            pending.append(
                PendingSend(
                    gateway_account,
                    peer_of(row),
                    record["id"],
                    record["random_id"],
                    outcome.text,
                    row["id"],
                    account.pacing,
                    row["campaign_id"],
                )
            )
        return pending

    async def send_batch(self, pending: Sequence[PendingSend], consumer: str = "sender") -> None:
        """The network calls of a committed batch, then their answers: the sends Telegram
        accepted are recorded in one transaction, each failure in its own (as before)."""
        outgoing = [Outgoing(p.account, p.peer, p.text, p.random_id) for p in pending]
        results = await send_all(self.gateway, outgoing, self.clock)
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
                *(self._isolated(self._record_sent(s), consumer) for s in streams if s)
            )
        for item, result in zip(pending, results, strict=True):
            if isinstance(result, GatewayError):
                await self._isolated(
                    self._failed(
                        item.account, item.message_id, item.execution_id, result, item.pacing
                    ),
                    consumer,
                )
            elif result is None:  # logged by the gateway; the lease brings the send back
                AFTER_COMMIT_FAILURES.labels(consumer, Topic.EXECUTIONS_DUE.value).inc()

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
        """One send and its answer (the batch's path, for one)."""
        await self.send_batch(
            [PendingSend(account, peer, message_id, random_id, text, execution_id, pacing)]
        )

    async def _record_sent(self, accepted: list[tuple[PendingSend, Delivery]]) -> None:
        """Record the sends Telegram accepted and move their executions on. An answer moves only
        the execution its record belongs to, standing where the record left it (same node, same
        count of sends), and only when it changed the record: a late answer (a stalled sender's,
        after another sender re-sent and recorded the same message) changes nothing."""
        now = self.clock.now()
        async with transaction(self.pool, self.clock) as tx:
            connection, outbox, writes = tx.connection, tx.outbox, Writes()
            # Executions first, then their records: the order the step's transaction takes.
            ids = list(dict.fromkeys(item.execution_id for item, _ in accepted))
            # No lease to match: the answers belong to these executions whatever their claim.
            no_leases = [None] * len(ids)
            rows = {r["id"]: r for r in await connection.fetch(
                QUERIES["lock_due_executions"], ids, no_leases)}  # fmt: skip
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
                outbox.emit(sent, key=record["campaign_id"], at=now)
                row = rows.get(record["execution_id"])
                if row is None or row["status"] not in UNFINISHED:
                    continue
                loaded = load(row, cache)
                if loaded.flow is None or row["id"] in moved or not stands_on(loaded, record):
                    continue
                moved.add(row["id"])
                step = interpreter.advance(loaded.flow, loaded.state, interpreter.Sent(now))
                stage(writes, outbox, loaded, step, now, sends=loaded.sends + 1)
            await writes.flush(connection)

    async def _failed(
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
            row = await connection.fetchrow(EXECUTIONS["lock_execution"], execution_id)
            assert row is not None
            record = await connection.fetchrow(QUERIES["lock_send_record"], message_id)
            open_ = record is not None and record["status"] == "queued"
            loaded = load(row)
            standing = (
                record is not None
                and open_
                and row["status"] in UNFINISHED
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
                    self._message_failed(
                        outbox, row, account, message_id, "unknown", error.reason, now
                    )
            elif isinstance(error, ContactPermanent):
                if open_:
                    await connection.execute(
                        QUERIES["mark_failed"], message_id, "contact_permanent", error.reason
                    )
                    self._message_failed(
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
                entered = await self._account_failed(
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
        self,
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
        `standing`: the execution stands on that send (so it waits or fails with it)."""
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
                await connection.execute(QUERIES["defer_execution"], row["id"], until, 0, now)
            if dropped:
                # The statistics count a recorded but unsent message: its outcome changed.
                self._message_failed(
                    outbox, row, account, None, "account_limited", error.reason, now
                )
        elif isinstance(error, AccountLimited):
            entered = await accounts.change_health(
                connection, outbox, account.id, AccountHealth.LIMITED, error.reason, now
            )
            if standing:
                later = now + timedelta(seconds=pacing.limited_retry_s)
                await connection.execute(QUERIES["defer_execution"], row["id"], later, 0, now)
            if dropped:
                self._message_failed(
                    outbox, row, account, None, "account_limited", error.reason, now
                )
        elif isinstance(error, AccountDead):
            health = AccountHealth(error.kind)
            entered = await accounts.change_health(
                connection, outbox, account.id, health, error.reason, now
            )
            if standing:
                reason = f"Telegram account {health.value.replace('_', ' ')}: {error.reason}"
                failed = interpreter.Fail(row["current_node_id"], reason)
                await save(connection, outbox, loaded, interpreter.Step(failed, loaded.state), now)
            if dropped:
                self._message_failed(outbox, row, account, None, "account_dead", error.reason, now)
        else:  # pragma: no cover - the gateway raises only the five categories
            raise error
        return entered

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
        outbox.emit(event, key=row["campaign_id"], at=now)
