"""Campaign flows: nodes and edges, their validation, and the parsed form the interpreter uses.

A flow is JSON: {"start": node id, "nodes": [...], "edges": [...]}. Each node has an id and a
type; each edge goes from a node to a node under a label (`when`) that says which outcome of the
source node it follows:

  send_message   {"text", "attachment_id"?}  next
  delay          {"seconds"}                 next
  wait_for_reply {"timeout_seconds"}         replied, timed_out
  condition      {"condition": {"kind": replied | has_tag | field_equals | opportunity_stage,
                  "tag" | "field", "value" | "pipeline_id", "stage_id"}}   true, false
  ab_split       {"variants": [{"name", "weight"}]}   one per variant name
  add_tag        {"tag"}                     next
  remove_tag     {"tag"}                     next
  set_opportunity_stage {"pipeline_id", "stage_id"}   next
  end            {}                          (none)

`validate` returns every problem at once, each naming its node or edge, so a client can show
them all next to the right element. Whether a pipeline and stage a flow names exist is not for
this module (it has no database): the API checks them when the flow is saved
(`pipeline_references` lists them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.domain.templates import limit_problem, template_problems

MAX_NODES = 500
# The template's own length; Telegram's limits (4,096 of text, 1,024 of caption) apply to its
# longest rendering (templates.limit_problem), which spintax can make much shorter.
MAX_TEXT = 16384
MAX_WAIT_SECONDS = 90 * 24 * 3600


class NodeType(StrEnum):
    SEND_MESSAGE = "send_message"
    DELAY = "delay"
    WAIT_FOR_REPLY = "wait_for_reply"
    CONDITION = "condition"
    AB_SPLIT = "ab_split"
    ADD_TAG = "add_tag"
    REMOVE_TAG = "remove_tag"
    SET_OPPORTUNITY_STAGE = "set_opportunity_stage"
    END = "end"


class ConditionKind(StrEnum):
    REPLIED = "replied"
    HAS_TAG = "has_tag"
    FIELD_EQUALS = "field_equals"
    OPPORTUNITY_STAGE = "opportunity_stage"


# Nodes that make time pass: a cycle through one of them is a deliberate loop, not a spin.
WAITING_TYPES = frozenset({NodeType.DELAY, NodeType.WAIT_FOR_REPLY})


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    node_id: str | None = None
    edge_id: str | None = None
    field: str | None = None  # the JSON path inside the flow, e.g. nodes[2].text

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        for key in ("node_id", "edge_id", "field"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True)
class Variant:
    name: str
    weight: int


@dataclass(frozen=True)
class Node:
    id: str
    type: NodeType
    text: str = ""
    attachment_id: str | None = None  # a photo or document sent with the text as its caption
    seconds: int = 0
    condition: ConditionKind | None = None
    tag: str = ""
    field_name: str = ""
    value: str = ""
    variants: tuple[Variant, ...] = ()
    pipeline_id: str = ""  # set_opportunity_stage, condition opportunity_stage: canonical uuids
    stage_id: str = ""


@dataclass(frozen=True)
class Flow:
    start: str
    nodes: Mapping[str, Node]
    # node id -> outcome label -> target node id
    edges: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def next(self, node_id: str, when: str) -> str | None:
        return self.edges.get(node_id, {}).get(when)


def outcomes(node: Node) -> tuple[str, ...]:
    """The edge labels a node needs, one edge each."""
    match node.type:
        case NodeType.WAIT_FOR_REPLY:
            return ("replied", "timed_out")
        case NodeType.CONDITION:
            return ("true", "false")
        case NodeType.AB_SPLIT:
            return tuple(v.name for v in node.variants)
        case NodeType.END:
            return ()
        case _:
            return ("next",)


class _Reader:
    """Collects problems while reading one node's fields."""

    def __init__(self, raw: Mapping[str, Any], index: int, node_id: str | None) -> None:
        self.raw = raw
        self.path = f"nodes[{index}]"
        self.node_id = node_id
        self.problems: list[Problem] = []

    def problem(self, code: str, message: str, key: str | None = None) -> None:
        path = f"{self.path}.{key}" if key else self.path
        self.problems.append(Problem(code, message, node_id=self.node_id, field=path))

    def text(self, key: str, *, required: bool = True, limit: int = 200) -> str:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.problem(
                    "empty_text" if key == "text" else "missing_field",
                    f"{key} must not be empty",
                    key,
                )
            return ""
        if not isinstance(value, str):
            self.problem("invalid_field", f"{key} must be text", key)
            return ""
        if len(value) > limit:
            self.problem("invalid_field", f"{key} must be at most {limit} characters", key)
        return value

    def uuid(self, key: str) -> str:
        """A record's id (a pipeline's, a stage's), in its canonical spelling."""
        value = self.raw.get(key)
        if value is None or value == "":
            self.problem("missing_field", f"{key} must be given", key)
            return ""
        try:
            return str(UUID(str(value)))
        except ValueError:
            self.problem("invalid_field", f"{key} must be an id", key)
            return ""

    def seconds(self, key: str) -> int:
        value = self.raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem("invalid_duration", f"{key} must be a whole number of seconds", key)
            return 0
        if not 1 <= value <= MAX_WAIT_SECONDS:
            self.problem("invalid_duration", f"{key} must be between 1 second and 90 days", key)
        return value


def _read_node(raw: Any, index: int) -> tuple[Node | None, list[Problem]]:
    if not isinstance(raw, Mapping):
        return None, [Problem("invalid_node", "a node must be an object", field=f"nodes[{index}]")]
    node_id = raw.get("id")
    reader = _Reader(raw, index, node_id if isinstance(node_id, str) and node_id else None)
    if reader.node_id is None:
        reader.problem("invalid_node", "a node needs a non-empty text id", "id")
    try:
        node_type = NodeType(str(raw.get("type")))
    except ValueError:
        known = ", ".join(t.value for t in NodeType)
        reader.problem("invalid_node", f"type must be one of {known}", "type")
        return None, reader.problems
    node = _read_fields(reader, node_type)
    return (node if reader.node_id else None), reader.problems


def _read_fields(reader: _Reader, node_type: NodeType) -> Node:
    node_id = reader.node_id or ""
    raw = reader.raw
    match node_type:
        case NodeType.SEND_MESSAGE:
            attachment_id = _attachment_id(reader)
            text = reader.text("text", limit=MAX_TEXT, required=attachment_id is None)
            problems = template_problems(text)
            for problem in problems:
                reader.problem(problem.code, problem.message, "text")
            too_long = None if problems else limit_problem(text, caption=attachment_id is not None)
            if too_long is not None:
                reader.problem(too_long.code, too_long.message, "text")
            return Node(node_id, node_type, text=text, attachment_id=attachment_id)
        case NodeType.DELAY:
            return Node(node_id, node_type, seconds=reader.seconds("seconds"))
        case NodeType.WAIT_FOR_REPLY:
            return Node(node_id, node_type, seconds=reader.seconds("timeout_seconds"))
        case NodeType.ADD_TAG | NodeType.REMOVE_TAG:
            return Node(node_id, node_type, tag=reader.text("tag", limit=64))
        case NodeType.CONDITION:
            return _read_condition(reader, node_id)
        case NodeType.SET_OPPORTUNITY_STAGE:
            pipeline_id, stage_id = reader.uuid("pipeline_id"), reader.uuid("stage_id")
            return Node(node_id, node_type, pipeline_id=pipeline_id, stage_id=stage_id)
        case NodeType.AB_SPLIT:
            return Node(node_id, node_type, variants=_read_variants(reader, raw.get("variants")))
        case NodeType.END:
            return Node(node_id, node_type)


def _attachment_id(reader: _Reader) -> str | None:
    raw = reader.raw.get("attachment_id")
    if raw is None:
        return None
    try:
        return str(UUID(str(raw)))
    except ValueError:
        reader.problem("invalid_field", "attachment_id must be an attachment's id", "attachment_id")
        return None


def _read_condition(reader: _Reader, node_id: str) -> Node:
    raw = reader.raw.get("condition")
    if not isinstance(raw, Mapping):
        reader.problem("invalid_condition", "condition must be an object with a kind", "condition")
        return Node(node_id, NodeType.CONDITION)
    try:
        kind = ConditionKind(str(raw.get("kind")))
    except ValueError:
        known = ", ".join(k.value for k in ConditionKind)
        reader.problem("invalid_condition", f"kind must be one of {known}", "condition.kind")
        return Node(node_id, NodeType.CONDITION)
    inner = _Reader(raw, 0, reader.node_id)
    inner.path = f"{reader.path}.condition"
    tag = field_name = value = pipeline_id = stage_id = ""
    if kind is ConditionKind.OPPORTUNITY_STAGE:
        pipeline_id, stage_id = inner.uuid("pipeline_id"), inner.uuid("stage_id")
    elif kind is ConditionKind.HAS_TAG:
        tag = inner.text("tag", limit=64)
    elif kind is ConditionKind.FIELD_EQUALS:
        field_name = inner.text("field", limit=64)
        raw_value = raw.get("value")
        if raw_value is None or isinstance(raw_value, (Mapping, list)):
            inner.problem("missing_field", "value must be given as text or a number", "value")
        else:
            value = str(raw_value)
    reader.problems.extend(inner.problems)
    return Node(
        node_id,
        NodeType.CONDITION,
        condition=kind,
        tag=tag,
        field_name=field_name,
        value=value,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
    )


def _read_variants(reader: _Reader, raw: Any) -> tuple[Variant, ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        reader.problem("bad_weights", "an A/B split needs at least two variants", "variants")
        return ()
    variants: list[Variant] = []
    for i, item in enumerate(raw):
        key = f"variants[{i}]"
        if not isinstance(item, Mapping):
            reader.problem("bad_weights", "a variant is an object with name and weight", key)
            continue
        name, weight = item.get("name"), item.get("weight")
        if not isinstance(name, str) or not name.strip():
            reader.problem("bad_weights", "a variant needs a name", f"{key}.name")
            continue
        if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 1000:
            reader.problem(
                "bad_weights",
                "a variant's weight must be a whole number from 1 to 1000",
                f"{key}.weight",
            )
            continue
        if any(v.name == name for v in variants):
            reader.problem("bad_weights", f"variant name {name!r} is used twice", f"{key}.name")
            continue
        variants.append(Variant(name, weight))
    return tuple(variants)


def validate(raw: Any) -> tuple[Flow | None, list[Problem]]:
    """Parse a flow and report every problem; the flow is returned only when there are none."""
    if not isinstance(raw, Mapping):
        return None, [Problem("invalid_flow", "a flow is an object with start, nodes and edges")]
    problems: list[Problem] = []
    raw_nodes, raw_edges = raw.get("nodes", []), raw.get("edges", [])
    if not isinstance(raw_nodes, list) or not isinstance(raw_edges, list):
        return None, [Problem("invalid_flow", "nodes and edges must be lists")]
    if len(raw_nodes) > MAX_NODES:
        return None, [
            Problem("invalid_flow", f"a flow has at most {MAX_NODES} nodes", field="nodes")
        ]
    nodes: dict[str, Node] = {}
    for index, raw_node in enumerate(raw_nodes):
        node, node_problems = _read_node(raw_node, index)
        problems.extend(node_problems)
        if node is not None:
            if node.id in nodes:
                problems.append(
                    Problem(
                        "duplicate_node",
                        f"node id {node.id!r} is used twice",
                        node_id=node.id,
                        field=f"nodes[{index}].id",
                    )
                )
            nodes[node.id] = node
    start = raw.get("start")
    if not isinstance(start, str) or start not in nodes:
        problems.append(
            Problem(
                "no_start_node", "the flow needs a start naming one of its nodes", field="start"
            )
        )
        start = None
    edges = _read_edges(raw_edges, nodes, problems)
    _check_outcomes(nodes, edges, problems)
    if start is not None:
        _check_reachable(start, nodes, edges, problems)
    _check_cycles(nodes, edges, problems)
    if problems or start is None:
        return None, problems
    return Flow(start, nodes, edges), []


def _read_edges(
    raw_edges: Sequence[Any], nodes: Mapping[str, Node], problems: list[Problem]
) -> dict[str, dict[str, str]]:
    edges: dict[str, dict[str, str]] = {}
    for index, raw in enumerate(raw_edges):
        path = f"edges[{index}]"
        if not isinstance(raw, Mapping):
            problems.append(Problem("invalid_edge", "an edge is an object", field=path))
            continue
        edge_id = str(raw.get("id") or path)
        source, target, when = raw.get("from"), raw.get("to"), raw.get("when", "next")
        dangling = [
            (end, name)
            for end, name in (("from", source), ("to", target))
            if not isinstance(name, str) or name not in nodes
        ]
        for end, name in dangling:
            problems.append(
                Problem(
                    "dangling_edge",
                    f"edge {end} {name!r} names no node",
                    edge_id=edge_id,
                    field=f"{path}.{end}",
                )
            )
        if dangling:
            continue
        assert isinstance(source, str)
        assert isinstance(target, str)
        allowed = outcomes(nodes[source])
        if when not in allowed:
            expected = ", ".join(allowed) or "no outgoing edges"
            problems.append(
                Problem(
                    "invalid_edge",
                    f"a {nodes[source].type.value} node takes {expected}, not {when!r}",
                    node_id=source,
                    edge_id=edge_id,
                    field=f"{path}.when",
                )
            )
            continue
        if when in edges.setdefault(source, {}):
            problems.append(
                Problem(
                    "invalid_edge",
                    f"node {source!r} has two {when!r} edges",
                    node_id=source,
                    edge_id=edge_id,
                )
            )
            continue
        edges[source][when] = target
    return edges


def _check_outcomes(
    nodes: Mapping[str, Node], edges: Mapping[str, Mapping[str, str]], problems: list[Problem]
) -> None:
    for node in nodes.values():
        for when in outcomes(node):
            if when not in edges.get(node.id, {}):
                problems.append(
                    Problem(
                        "missing_edge",
                        f"node {node.id!r} needs a {when!r} edge (end the flow with an end node)",
                        node_id=node.id,
                    )
                )


def _check_reachable(
    start: str,
    nodes: Mapping[str, Node],
    edges: Mapping[str, Mapping[str, str]],
    problems: list[Problem],
) -> None:
    seen = {start}
    stack = [start]
    while stack:
        for target in edges.get(stack.pop(), {}).values():
            if target not in seen:
                seen.add(target)
                stack.append(target)
    for node_id in nodes:
        if node_id not in seen:
            problems.append(
                Problem(
                    "unreachable_node",
                    f"node {node_id!r} cannot be reached from the start",
                    node_id=node_id,
                )
            )


def _check_cycles(
    nodes: Mapping[str, Node], edges: Mapping[str, Mapping[str, str]], problems: list[Problem]
) -> None:
    """A cycle is fine if time passes on it; one made only of instant nodes would spin forever.
    Find the strongly connected components of the graph without waiting nodes (Tarjan)."""
    instant = {n for n, node in nodes.items() if node.type not in WAITING_TYPES}
    successors = {n: [t for t in edges.get(n, {}).values() if t in instant] for n in instant}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0

    def connect(root: str) -> None:
        nonlocal counter
        work = [(root, iter(successors[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    _report_cycle(component, successors, problems)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(successors[child])))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    for node_id in sorted(instant):
        if node_id not in index:
            connect(node_id)


def _report_cycle(
    component: list[str], successors: Mapping[str, list[str]], problems: list[Problem]
) -> None:
    single = component[0]
    if len(component) == 1 and single not in successors[single]:
        return
    members = ", ".join(repr(n) for n in sorted(component))
    for node_id in sorted(component):
        problems.append(
            Problem(
                "cycle_without_wait",
                f"nodes {members} form a loop with no delay or wait_for_reply",
                node_id=node_id,
            )
        )


def launch_problems(raw: Any) -> int:
    """How many problems stand between this flow and a launch (an empty flow is one)."""
    if isinstance(raw, Mapping) and not raw.get("nodes"):
        return 1
    return len(validate(raw)[1])


@dataclass(frozen=True)
class StageReference:
    """A pipeline and stage a flow names (a set_opportunity_stage node or an opportunity_stage
    condition), with where, for a problem that names the node."""

    node_id: str
    field: str  # the JSON path of the node's stage_id, e.g. nodes[3].condition.stage_id
    pipeline_id: UUID
    stage_id: UUID


def pipeline_references(raw: Any) -> list[StageReference]:
    """The pipelines and stages a flow's nodes name, for the check that they exist (well-formed
    ids only: a malformed one is validate's problem)."""
    nodes = raw.get("nodes") if isinstance(raw, Mapping) else None
    found: list[StageReference] = []
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        path, holder = f"nodes[{index}]", node
        if node.get("type") == NodeType.CONDITION.value:
            condition = node.get("condition")
            if not isinstance(condition, Mapping):
                continue
            if condition.get("kind") != ConditionKind.OPPORTUNITY_STAGE.value:
                continue
            path, holder = f"{path}.condition", condition
        elif node.get("type") != NodeType.SET_OPPORTUNITY_STAGE.value:
            continue
        try:
            pipeline, stage = (
                UUID(str(holder.get("pipeline_id"))),
                UUID(str(holder.get("stage_id"))),
            )
        except ValueError:
            continue
        found.append(StageReference(node["id"], f"{path}.stage_id", pipeline, stage))
    return found
