"""A step without I/O: a locked execution's row becomes a `Loaded` (its flow, its state), and what
the interpreter decided becomes a `Plan`, the writes and events the step makes. Nothing here
touches the database; services/sender/writer.py applies a plan in the caller's transaction.

A plan gathers many executions' steps (a consumed batch's), so they are written set-based."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from uuid import UUID

import asyncpg

from services.sender.gateway import Account, Peer
from shared.db.rows import ExecutionRow, Row
from shared.domain import crm, flows, interpreter, reach, recipient_zones, windows
from shared.domain.campaigns import CampaignStatus
from shared.domain.executions import BETWEEN_STEPS
from shared.domain.pacing import Pacing
from shared.domain.windows import Window
from shared.messaging.contracts import ExecutionDue, ExecutionProgressed, Payload


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _time(raw: Any) -> datetime | None:
    return datetime.fromisoformat(raw) if raw else None


@dataclass(frozen=True)
class Loaded:
    row: ExecutionRow
    flow: flows.Flow | None
    problem: str | None
    state: interpreter.ExecutionState
    sends: int

    @property
    def account_id(self) -> UUID:
        """The campaign's account, which sends its steps: a runnable execution has one."""
        account = self.row.account_id
        assert account is not None, f"execution {self.row.id} has no account to send from"
        return account

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
    """What the rows of one lock_executions query share per campaign, decoded once."""

    flow: flows.Flow | None
    problems: list[flows.Problem]
    window: Window | None
    # settings.active_hours.in_recipient_zone: the window is read in each contact's zone.
    in_recipient_zone: bool = False

    def recipient_zone(self, row: ExecutionRow) -> str | None:
        """The zone this campaign's window is read in for a row's contact (None: its own)."""
        if not self.in_recipient_zone:
            return None
        return recipient_zones.recipient_zone(True, row.contact_time_zone, row.phone)


# Per query: the rows of one query see one version of each campaign.
CampaignCache = dict[UUID, Campaign]


def campaign_of(row: ExecutionRow, cache: CampaignCache) -> Campaign:
    """The campaign of an execution row, decoded once per cache (one query's rows)."""
    known = cache.get(row.campaign_id)
    if known is None:
        flow, problems = flows.validate(json.loads(row.flow_json))
        settings = row.settings
        window = window_of(settings, row.timezone)
        hours = (settings or {}).get("active_hours") or {}
        in_zone = window is not None and bool(hours.get("in_recipient_zone"))
        known = cache[row.campaign_id] = Campaign(flow, problems, window, in_zone)
    return known


def load(row: ExecutionRow, cache: CampaignCache | None = None) -> Loaded:
    """An execution row (executions.lock, or lock_many with the cache of its query)."""
    campaign = campaign_of(row, {} if cache is None else cache)
    flow, problems = campaign.flow, campaign.problems
    saved: Mapping[str, Any] = row.context.get("flow", {})
    values = _values(row.custom_fields, row.first_name, row.last_name, row.telegram_username,
                     row.phone)  # fmt: skip
    state = interpreter.ExecutionState(
        execution_key=str(row.contact_id),
        node_id=row.current_node_id,
        values=values,
        tags=frozenset(saved.get("tags", row.contact_tags or [])),
        wait_until=_time(saved.get("wait_until")),
        last_sent_at=_time(saved.get("last_sent_at")),
        replied_at=_time(saved.get("replied_at")),
        variant=row.variant,
        opportunities=dict(row.opportunity_stages or {}),
    )
    problem = "; ".join(p.message for p in problems[:3]) if flow is None else None
    return Loaded(row, flow, problem, state, int(saved.get("sends", 0)))


def contact_values(row: Row) -> dict[str, Any]:
    """What a template's variables read of a contact (its custom fields, names, username and
    phone), from a row with those columns."""
    return _values(row["custom_fields"], row["first_name"], row["last_name"],
                   row["telegram_username"], row["phone"])  # fmt: skip


def _values(
    custom_fields: Mapping[str, Any] | None,
    first_name: str | None,
    last_name: str | None,
    telegram_username: str | None,
    phone: str | None,
) -> dict[str, Any]:
    values: dict[str, Any] = dict(custom_fields or {})
    values.update(first_name=first_name, last_name=last_name,
                  telegram_username=telegram_username, phone=phone)  # fmt: skip
    values["username"] = telegram_username
    return values


def window_of(settings: Mapping[str, Any] | None, timezone: str) -> Window | None:
    """The campaign's sending window (settings.active_hours) in its time zone, if it has one."""
    raw = (settings or {}).get("active_hours")
    if not raw:
        return None
    return windows.window_of(
        timezone,
        raw.get("days"),
        time.fromisoformat(raw["start"]) if raw.get("start") else None,
        time.fromisoformat(raw["end"]) if raw.get("end") else None,
    )


def runnable(row: ExecutionRow | None, due: ExecutionDue | None) -> bool:
    if row is None or row.status not in BETWEEN_STEPS:
        return False
    if row.campaign_status != CampaignStatus.ACTIVE or not row.campaign_enabled:
        return False
    if row.campaign_deleted_at is not None or row.account_id is None:
        return False
    if row.taken_over_at is not None:
        return False  # a person answers this conversation (docs/inbox.md): held until released
    # A stale event (an older claim) is ignored; the current claim's event moves it.
    return due is None or due.lease_until is None or row.lease_until == due.lease_until


def step_due(loaded: Loaded, now: datetime) -> interpreter.Step:
    """The interpreter's step for a due execution; an invalid flow fails it."""
    if loaded.flow is None:
        fail = interpreter.Fail(loaded.row.current_node_id, f"invalid flow: {loaded.problem}")
        return interpreter.Step(fail, loaded.state)
    return interpreter.advance(loaded.flow, loaded.state, interpreter.Due(now))


def peer_of(row: Row) -> Peer:
    """The peer of a row with a contact's contact_id, telegram_username, phone and
    telegram_user_id."""
    return peer_at(row["contact_id"], row["telegram_username"], row["phone"],
                   row["telegram_user_id"])  # fmt: skip


def peer_at(contact_id: UUID, username: str | None, phone: str | None, user_id: int | None) -> Peer:
    """How a contact is reached: by username, else by phone, else by Telegram's user id."""
    if username:
        return Peer(username, contact_id, "username")
    if phone:
        return Peer(phone, contact_id, "phone")
    return Peer(str(user_id), contact_id, "user_id")


def random_id_for(send_key: str) -> int:
    """Telegram's random_id for this send: stable per send record, positive 63 bits."""
    return int.from_bytes(hashlib.sha256(send_key.encode()).digest()[:8], "big") >> 1


def send_key(loaded: Loaded, step: interpreter.Step) -> str:
    """The send record's unique key: execution, node, how many sends before."""
    assert isinstance(step.outcome, interpreter.Send)
    return send_key_at(loaded.row.id, step.outcome.node_id, loaded.sends)


def send_key_at(execution_id: UUID, node_id: str, sends: int) -> str:
    return f"{execution_id}:{node_id}:{sends}"


def stands_on(loaded: Loaded, record: asyncpg.Record) -> bool:
    """Does the execution stand where this send record left it: on the record's node, with the
    same count of sends before? Only then may the record's answer move it."""
    here = send_key_at(loaded.row.id, loaded.row.current_node_id or "", loaded.sends)
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
    attachment_id: UUID | None = None  # sent with the text as its caption


@dataclass(frozen=True)
class StageMove:
    """A contact's opportunity in a pipeline moved to a stage by a flow's node (created there
    if absent, named after the contact, by the campaign's creator)."""

    contact_id: UUID
    pipeline_id: UUID
    stage_id: UUID
    campaign_id: UUID
    execution_id: UUID
    node_id: str
    name: str
    created_by: UUID
    at: datetime


@dataclass
class Plan:
    """The writes and events of many executions' steps, gathered here and applied set-based by
    writer.apply in the caller's transaction. An execution saved twice keeps its last save (each
    save sets every column). Events keep the order they were staged in."""

    executions: dict[UUID, tuple[Any, ...]] = field(default_factory=dict)
    logs: list[tuple[Any, ...]] = field(default_factory=list)
    tags: dict[UUID, tuple[list[str], datetime]] = field(default_factory=dict)
    skips: dict[UUID, tuple[Any, ...]] = field(default_factory=dict)  # sends not made
    dropped: list[UUID] = field(default_factory=list)  # their queued records
    events: list[tuple[Payload, UUID, datetime]] = field(default_factory=list)
    # set_opportunity_stage: (contact, pipeline) -> the stage and where the move was made
    stages: dict[tuple[UUID, UUID], StageMove] = field(default_factory=dict)

    def emit(self, payload: Payload, key: UUID, at: datetime) -> None:
        self.events.append((payload, key, at))

    def log(
        self,
        row: ExecutionRow,
        node: tuple[str | None, str],
        kind: tuple[str, str],
        detail: str | None,
        at: datetime,
    ) -> None:
        """An execution log of this row's execution: at `node` (its id and type), `kind` (the
        event and its result)."""
        self.logs.append((row.campaign_id, row.id, row.contact_id, *node, *kind, detail, at))

    def progressed(
        self, row: ExecutionRow, status: str, node_id: str | None, detail: str, at: datetime
    ) -> None:
        """ExecutionProgressed from the row's status to `status`, keyed by its campaign."""
        event = ExecutionProgressed(
            execution_id=row.id,
            campaign_id=row.campaign_id,
            contact_id=row.contact_id,
            previous_status=row.status,
            status=status,
            node_id=node_id,
            detail=detail,
        )
        self.emit(event, row.campaign_id, at)


def stage(
    plan: Plan,
    loaded: Loaded,
    step: interpreter.Step,
    now: datetime,
    *,
    sends: int | None = None,
    lease_until: datetime | None = None,
    deferred_to: datetime | None = None,
    interrupted: str | None = None,
) -> None:
    """Gather an interpreter step: the execution's new status and state, logs, tags, events.
    The claim is released unless `lease_until` keeps it (a send in flight); `deferred_to` puts
    a send off until then (pacing, active hours); `interrupted` pauses it there, with that
    reason (its account is dead)."""
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
            status, next_at = row.status, row.next_execution_at
        case interpreter.Send():
            status, next_at = "pending", now  # the next send: due at once, paced by the sender
    if deferred_to is not None:
        next_at = deferred_to
    if interrupted is not None:
        status, error = "paused", interrupted
    flow_context = Loaded.context_of(step.state, loaded.sends if sends is None else sends)
    plan.executions[row.id] = (
        row.id,
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
        kind = ("execution_failed", "failed") if last_failed else ("node_executed", "ok")
        plan.log(row, (v.node_id, v.node_type.value), kind, v.detail, now)
    if step.tags_added or step.tags_removed:
        plan.tags[row.contact_id] = (sorted(step.state.tags), now)
    for pipeline, stage_id in step.stages_set:
        mover = next(
            (v.node_id for v in reversed(step.visited) if v.detail == f"stage {stage_id}"), ""
        )
        move = StageMove(
            contact_id=row.contact_id,
            pipeline_id=UUID(pipeline),
            stage_id=UUID(stage_id),
            campaign_id=row.campaign_id,
            execution_id=row.id,
            node_id=mover,
            name=crm.display_name(row.first_name, row.last_name, row.telegram_username, row.phone),
            created_by=row.campaign_created_by,
            at=now,
        )
        plan.stages[(move.contact_id, move.pipeline_id)] = move
    if status != row.status or step.state.node_id != row.current_node_id:
        detail = error or (visits[-1].detail if visits else "")
        plan.progressed(row, status, step.state.node_id, detail, now)


def skip(
    plan: Plan,
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
    node_id = outcome.node_id if isinstance(outcome, interpreter.Send) else row.current_node_id
    node = loaded.flow.nodes.get(node_id or "") if loaded.flow is not None else None
    if refused.ends:
        status, next_at, completed_at = "cancelled", None, now
    else:
        # Due at once: dispatch leaves it until the campaign has a live account again.
        status, next_at, completed_at = "waiting", now, None
    reason = refused.reason.value
    plan.skips[row.id] = (row.id, status, next_at, completed_at, reason, now)
    node_type = node.type.value if node is not None else flows.NodeType.END.value
    plan.log(row, (node_id, node_type), ("send_skipped", "skipped"), reason, now)
    if refused.ends and record is not None and record["status"] == "queued":
        plan.dropped.append(record["id"])
    if status != row.status:
        plan.progressed(row, status, row.current_node_id, reason, now)
