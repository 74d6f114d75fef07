"""The flow interpreter: given an execution's state, its flow and what just happened, what to do
next. Pure: no I/O, no clock (the time comes in with the event).

An execution stands on one node. Instant nodes (condition, ab_split, add_tag, remove_tag,
set_opportunity_stage) are walked through in one step; the walk stops at a node that needs
the world:

- send_message: `Send` the rendered text; the sender reports back with `Sent` or `SendFailed`.
- delay: `Wait` until now + seconds; `Due` at or after that time moves on.
- wait_for_reply: `Wait` until the timeout; `Replied` takes the replied edge, `Due` at or after
  the timeout the timed_out edge. A reply that came after the last message was sent counts.
- end: `Complete`.

set_opportunity_stage moves the contact's opportunity in a pipeline to a stage (creating it if
the contact has none there): the step's `stages_set` names the moves, for the sender to write in
the step's transaction, and the walk's state has them at once, so a later opportunity_stage
condition in the same walk sees the new stage.

Errors of the world (flood waits, transient failures) are the sender's to retry; the interpreter
only hears about sends that failed for good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain.flows import ConditionKind, Flow, Node, NodeType
from shared.domain.templates import CAPTION_LIMIT, TEXT_LIMIT, render

# Validated flows have no loop of instant nodes; this only guards against a flow that slipped by.
MAX_INSTANT_STEPS = 1000


@dataclass(frozen=True)
class ExecutionState:
    """What the interpreter needs to know about one execution."""

    execution_key: str  # stable per execution (its contact id): seeds the A/B choice
    node_id: str | None = None  # None: not started
    values: Mapping[str, Any] = field(default_factory=dict)  # template and condition fields
    tags: frozenset[str] = frozenset()
    wait_until: datetime | None = None  # end of the current delay or reply timeout
    last_sent_at: datetime | None = None
    replied_at: datetime | None = None
    variant: str | None = None
    # The contact's opportunities: pipeline id -> the stage id it stands in (canonical uuids).
    opportunities: Mapping[str, str] = field(default_factory=dict)


# What happened --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    """The execution's time has come (to start, or a wait has run out)."""

    now: datetime


@dataclass(frozen=True)
class Replied:
    now: datetime


@dataclass(frozen=True)
class Sent:
    now: datetime


@dataclass(frozen=True)
class SendFailed:
    now: datetime
    reason: str


Event = Due | Replied | Sent | SendFailed


# What to do -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    node_id: str
    text: str
    attachment_id: str | None = None  # the text is then the attachment's caption


@dataclass(frozen=True)
class Wait:
    node_id: str
    until: datetime


@dataclass(frozen=True)
class Complete:
    node_id: str | None


@dataclass(frozen=True)
class Fail:
    node_id: str | None
    reason: str


@dataclass(frozen=True)
class Stay:
    """Nothing to do now (a reply while not waiting for one, an early Due)."""

    node_id: str | None


Outcome = Send | Wait | Complete | Fail | Stay


@dataclass(frozen=True)
class Visit:
    node_id: str
    node_type: NodeType
    detail: str


@dataclass(frozen=True)
class Step:
    outcome: Outcome
    state: ExecutionState  # the execution as it stands after the step
    visited: tuple[Visit, ...] = ()  # nodes passed through, for the execution log
    tags_added: frozenset[str] = frozenset()
    tags_removed: frozenset[str] = frozenset()
    # Opportunity moves of the walk: (pipeline id, stage id), the last per pipeline, in order.
    stages_set: tuple[tuple[str, str], ...] = ()


def choose_variant(node: Node, execution_key: str) -> str:
    """Deterministic per execution and node, distributed by the variants' weights."""
    total = sum(v.weight for v in node.variants)
    digest = hashlib.sha256(f"{execution_key}:{node.id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for variant in node.variants:
        if point < variant.weight:
            return variant.name
        point -= variant.weight
    raise AssertionError("weights exhausted")  # pragma: no cover - point < total


def _condition(node: Node, state: ExecutionState) -> bool:
    match node.condition:
        case ConditionKind.REPLIED:
            return state.replied_at is not None
        case ConditionKind.HAS_TAG:
            return node.tag in state.tags
        case ConditionKind.FIELD_EQUALS:
            value = state.values.get(node.field_name)
            return value is not None and str(value) == node.value
        case ConditionKind.OPPORTUNITY_STAGE:
            return state.opportunities.get(node.pipeline_id) == node.stage_id
    return False  # pragma: no cover - validated flows name a kind


def _replied_since_send(state: ExecutionState) -> bool:
    if state.replied_at is None:
        return False
    return state.last_sent_at is None or state.replied_at >= state.last_sent_at


def rendered(
    node: Node, values: Mapping[str, object], execution_key: str
) -> tuple[str, str | None]:
    """A send step's text for one execution (spintax seeded by its key and the step's id, so a
    resend, or a test send for the same contact, gets the same text), and why it may not go
    if it may not: validation measured the template with fallbacks, and a long value can still
    carry it over Telegram's limit, which would refuse it."""
    text = render(node.text, values, f"{execution_key}:{node.id}")
    limit = TEXT_LIMIT if node.attachment_id is None else CAPTION_LIMIT
    if len(text) > limit:
        return text, f"the message renders to {len(text)} characters (limit {limit})"
    return text, None


class _Walk:
    def __init__(self, flow: Flow, state: ExecutionState) -> None:
        self.flow = flow
        self.state = state
        self.visited: list[Visit] = []
        self.added: set[str] = set()
        self.removed: set[str] = set()
        self.stages: dict[str, str] = {}

    def step(self, outcome: Outcome) -> Step:
        return Step(
            outcome,
            self.state,
            tuple(self.visited),
            frozenset(self.added),
            frozenset(self.removed),
            tuple(self.stages.items()),
        )

    def follow(self, node_id: str, when: str, now: datetime) -> Step:
        target = self.flow.next(node_id, when)
        if target is None:
            return self.step(Fail(node_id, f"node {node_id!r} has no {when!r} edge"))
        return self.enter(target, now)

    def enter(self, node_id: str, now: datetime) -> Step:
        for _ in range(MAX_INSTANT_STEPS):
            node = self.flow.nodes.get(node_id)
            if node is None:
                return self.step(Fail(node_id, f"the flow has no node {node_id!r}"))
            self.state = replace(self.state, node_id=node_id, wait_until=None)
            match node.type:
                case NodeType.SEND_MESSAGE:
                    text, too_long = rendered(node, self.state.values, self.state.execution_key)
                    if too_long is not None:
                        return self.step(Fail(node_id, too_long))
                    self.visited.append(Visit(node_id, node.type, "send"))
                    return self.step(Send(node_id, text, node.attachment_id))
                case NodeType.DELAY:
                    until = now + timedelta(seconds=node.seconds)
                    self.state = replace(self.state, wait_until=until)
                    self.visited.append(Visit(node_id, node.type, f"wait {node.seconds}s"))
                    return self.step(Wait(node_id, until))
                case NodeType.WAIT_FOR_REPLY:
                    if _replied_since_send(self.state):
                        self.visited.append(Visit(node_id, node.type, "already replied"))
                        node_id = self._edge(node_id, "replied")
                        continue
                    until = now + timedelta(seconds=node.seconds)
                    self.state = replace(self.state, wait_until=until)
                    self.visited.append(Visit(node_id, node.type, "waiting for a reply"))
                    return self.step(Wait(node_id, until))
                case NodeType.END:
                    self.visited.append(Visit(node_id, node.type, "end"))
                    return self.step(Complete(node_id))
                case NodeType.CONDITION:
                    result = _condition(node, self.state)
                    self.visited.append(Visit(node_id, node.type, str(result).lower()))
                    node_id = self._edge(node_id, "true" if result else "false")
                case NodeType.AB_SPLIT:
                    variant = choose_variant(node, self.state.execution_key)
                    self.state = replace(self.state, variant=variant)
                    self.visited.append(Visit(node_id, node.type, f"variant {variant}"))
                    node_id = self._edge(node_id, variant)
                case NodeType.ADD_TAG | NodeType.REMOVE_TAG:
                    self._tag(node)
                    node_id = self._edge(node_id, "next")
                case NodeType.SET_OPPORTUNITY_STAGE:
                    self._stage(node)
                    node_id = self._edge(node_id, "next")
            if node_id == "":
                return self.step(Fail(self.state.node_id, "a node is missing an edge"))
        return self.step(Fail(node_id, "the flow loops without waiting"))

    def _edge(self, node_id: str, when: str) -> str:
        return self.flow.next(node_id, when) or ""

    def _stage(self, node: Node) -> None:
        opportunities = dict(self.state.opportunities)
        opportunities[node.pipeline_id] = node.stage_id
        self.stages.pop(node.pipeline_id, None)  # the last move per pipeline, in walk order
        self.stages[node.pipeline_id] = node.stage_id
        self.state = replace(self.state, opportunities=opportunities)
        self.visited.append(Visit(node.id, node.type, f"stage {node.stage_id}"))

    def _tag(self, node: Node) -> None:
        tags = set(self.state.tags)
        if node.type is NodeType.ADD_TAG:
            tags.add(node.tag)
            self.added.add(node.tag)
            self.removed.discard(node.tag)
        else:
            tags.discard(node.tag)
            self.removed.add(node.tag)
            self.added.discard(node.tag)
        self.state = replace(self.state, tags=frozenset(tags))
        self.visited.append(Visit(node.id, node.type, node.tag))


def advance(
    flow: Flow, state: ExecutionState, event: Event, *, stop_on_reply: bool = False
) -> Step:
    walk = _Walk(flow, state)
    node = flow.nodes.get(state.node_id) if state.node_id is not None else None
    if state.node_id is not None and node is None:
        return walk.step(Fail(state.node_id, f"the flow no longer has node {state.node_id!r}"))
    if isinstance(event, Replied):
        walk.state = replace(walk.state, replied_at=event.now)
        if node is not None and node.type is NodeType.WAIT_FOR_REPLY and state.wait_until:
            walk.visited.append(Visit(node.id, node.type, "replied"))
            return walk.follow(node.id, "replied", event.now)
        if stop_on_reply:
            return walk.step(Complete(state.node_id))
        return walk.step(Stay(state.node_id))
    if isinstance(event, SendFailed):
        return walk.step(Fail(state.node_id, event.reason))
    if isinstance(event, Sent):
        if node is None or node.type is not NodeType.SEND_MESSAGE:
            return walk.step(Stay(state.node_id))  # a late or repeated report
        walk.state = replace(walk.state, last_sent_at=event.now)
        return walk.follow(node.id, "next", event.now)
    # Due
    if node is None:
        return walk.enter(flow.start, event.now)
    if node.type in (NodeType.DELAY, NodeType.WAIT_FOR_REPLY):
        if state.wait_until is not None and event.now < state.wait_until:
            return walk.step(Wait(node.id, state.wait_until))
        when = "next" if node.type is NodeType.DELAY else "timed_out"
        walk.visited.append(
            Visit(node.id, node.type, "timed out" if when == "timed_out" else "waited")
        )
        return walk.follow(node.id, when, event.now)
    if node.type is NodeType.SEND_MESSAGE:
        # Due again on a send node: the send was never confirmed; ask for it again (the sender
        # reconciles an unfinished send record before it repeats anything).
        return walk.enter(node.id, event.now)
    if node.type is NodeType.END:
        return walk.step(Complete(node.id))
    return walk.enter(node.id, event.now)
