"""Flow validation: every problem at once, each naming its node or edge."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from shared.domain.flows import (
    NodeType,
    StageReference,
    launch_problems,
    pipeline_references,
    validate,
)
from tests.builders import END, EVERY_TYPE, SEND, edge, flow

PIPELINE = "00000000-0000-4000-8000-0000000000a1"
STAGE = "00000000-0000-4000-8000-0000000000b1"


def with_stages(
    base: dict[str, Any], pipeline: Any = PIPELINE, stage: Any = STAGE
) -> dict[str, Any]:
    """EVERY_TYPE with its tag node going through a set_opportunity_stage and an
    opportunity_stage condition before the end (the API saves EVERY_TYPE without records)."""
    move = {
        "id": "move",
        "type": "set_opportunity_stage",
        "pipeline_id": pipeline,
        "stage_id": stage,
    }
    check = {
        "id": "staged?",
        "type": "condition",
        "condition": {"kind": "opportunity_stage", "pipeline_id": pipeline, "stage_id": stage},
    }
    edges = [e for e in base["edges"] if not (e["from"] == "tag" and e["to"] == "end")]
    edges += [edge("tag", "move"), edge("move", "staged?"), edge("staged?", "end", "true"),
              edge("staged?", "end", "false")]  # fmt: skip
    return flow([*base["nodes"], move, check], edges)


def test_a_flow_with_every_node_type_is_valid() -> None:
    parsed, problems = validate(with_stages(EVERY_TYPE))
    assert problems == []
    assert parsed is not None
    assert {n.type for n in parsed.nodes.values()} == set(NodeType)
    assert parsed.next("wait", "timed_out") == "pause"
    assert [v.weight for v in parsed.nodes["split"].variants] == [70, 30]
    move = parsed.nodes["move"]
    assert (move.pipeline_id, move.stage_id) == (PIPELINE, STAGE)
    check = parsed.nodes["staged?"]
    assert (check.pipeline_id, check.stage_id) == (PIPELINE, STAGE)


@pytest.mark.parametrize(
    ("pipeline", "stage", "expected"),
    [
        (None, STAGE, [("missing_field", "nodes[11].pipeline_id"),
                       ("missing_field", "nodes[12].condition.pipeline_id")]),
        (PIPELINE, "stage-one", [("invalid_field", "nodes[11].stage_id"),
                                 ("invalid_field", "nodes[12].condition.stage_id")]),
        (PIPELINE.upper(), STAGE, []),  # any spelling of an id; read canonical
    ],
)  # fmt: skip
def test_stage_nodes_need_a_pipeline_and_a_stage_id(
    pipeline: Any, stage: Any, expected: list[tuple[str, str]]
) -> None:
    _, problems = validate(with_stages(EVERY_TYPE, pipeline, stage))
    assert sorted((p.code, p.field) for p in problems) == expected


def test_the_pipelines_and_stages_a_flow_names_are_listed_for_the_check() -> None:
    assert pipeline_references(EVERY_TYPE) == []
    assert pipeline_references(with_stages(EVERY_TYPE)) == [
        StageReference("move", "nodes[11].stage_id", UUID(PIPELINE), UUID(STAGE)),
        StageReference("staged?", "nodes[12].condition.stage_id", UUID(PIPELINE), UUID(STAGE)),
    ]
    assert pipeline_references(with_stages(EVERY_TYPE, "nope")) == []  # validate's to report


def test_a_loop_through_a_wait_is_allowed() -> None:
    nodes: list[dict[str, Any]] = [SEND, {"id": "wait", "type": "delay", "seconds": 60}]
    parsed, problems = validate(flow(nodes, [edge("hello", "wait"), edge("wait", "hello")]))
    assert problems == []
    assert parsed is not None


CASES = [
    # flow -> the problems expected, as (code, node_id, edge_id)
    (flow([SEND, END], [edge("hello", "end")], start="nope"), [("no_start_node", None, None)]),
    ({"nodes": [SEND, END], "edges": [edge("hello", "end")]}, [("no_start_node", None, None)]),
    (
        flow([SEND, END], [edge("hello", "end"), edge("hello", "ghost", edge_id="e9")]),
        [("dangling_edge", None, "e9")],
    ),
    (
        flow([SEND, END], [edge("ghost", "end", edge_id="e1"), edge("hello", "end")]),
        [("dangling_edge", None, "e1")],
    ),
    (
        flow([SEND, END, {"id": "lost", "type": "end"}], [edge("hello", "end")]),
        [("unreachable_node", "lost", None)],
    ),
    (
        flow(
            [SEND, {"id": "tag", "type": "add_tag", "tag": "x"}],
            [edge("hello", "tag"), edge("tag", "hello")],
        ),
        [("cycle_without_wait", "hello", None), ("cycle_without_wait", "tag", None)],
    ),
    (
        flow(
            [SEND, {"id": "self", "type": "add_tag", "tag": "x"}],
            [edge("hello", "self"), edge("self", "self")],
        ),
        [("cycle_without_wait", "self", None)],
    ),
    (
        flow([{"id": "hello", "type": "send_message", "text": "  "}, END], [edge("hello", "end")]),
        [("empty_text", "hello", None)],
    ),
    (
        flow([{"id": "hello", "type": "send_message"}, END], [edge("hello", "end")]),
        [("empty_text", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "send_message", "text": "{user.__class__}"}, END],
            [edge("hello", "end")],
        ),
        [("invalid_template", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "send_message", "text": "{first_name:>99999}"}, END],
            [edge("hello", "end")],
        ),
        [("invalid_template", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "send_message", "text": "{Hi|Hello"}, END],
            [edge("hello", "end")],
        ),
        [("unbalanced_braces", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "send_message", "text": "{Hi||Hello}"}, END],
            [edge("hello", "end")],
        ),
        [("empty_alternative", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "send_message", "text": "{a|" + "x" * 4097 + "}"}, END],
            [edge("hello", "end")],
        ),
        [("text_too_long", "hello", None)],
    ),
    (
        flow(
            [
                {
                    "id": "hello",
                    "type": "send_message",
                    "text": "x" * 1025,
                    "attachment_id": "6f1e2db0-0000-4000-8000-000000000000",
                },
                END,
            ],
            [edge("hello", "end")],
        ),
        [("caption_too_long", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "send_message", "text": "Hi", "attachment_id": "nope"}, END],
            [edge("hello", "end")],
        ),
        [("invalid_field", "hello", None)],
    ),
    (
        flow(
            [
                {
                    "id": "hello",
                    "type": "ab_split",
                    "variants": [{"name": "a", "weight": 0}, {"name": "b", "weight": 5}],
                },
                END,
            ],
            [edge("hello", "end", "a"), edge("hello", "end", "b")],
        ),
        [("bad_weights", "hello", None), ("invalid_edge", "hello", "edges[0]")],
    ),
    (
        flow(
            [{"id": "hello", "type": "ab_split", "variants": [{"name": "a", "weight": 1}]}, END],
            [edge("hello", "end", "a")],
        ),
        [
            ("bad_weights", "hello", None),
            ("invalid_edge", "hello", "edges[0]"),
            ("unreachable_node", "end", None),
        ],
    ),
    (
        flow(
            [
                {
                    "id": "hello",
                    "type": "ab_split",
                    "variants": [{"name": "a", "weight": 1}, {"name": "a", "weight": 2}],
                },
                END,
            ],
            [edge("hello", "end", "a")],
        ),
        [("bad_weights", "hello", None)],
    ),
    (
        flow([{"id": "hello", "type": "delay", "seconds": -5}, END], [edge("hello", "end")]),
        [("invalid_duration", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "wait_for_reply", "timeout_seconds": 60}, END],
            [edge("hello", "end", "replied")],
        ),
        [("missing_edge", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "condition", "condition": {"kind": "has_tag"}}, END],
            [edge("hello", "end", "true"), edge("hello", "end", "false")],
        ),
        [("missing_field", "hello", None)],
    ),
    (
        flow(
            [{"id": "hello", "type": "condition", "condition": {"kind": "moon"}}, END],
            [edge("hello", "end", "true"), edge("hello", "end", "false")],
        ),
        [("invalid_condition", "hello", None)],
    ),
    (
        flow([SEND, END], [edge("hello", "end", "true", edge_id="e1")]),
        [
            ("invalid_edge", "hello", "e1"),
            ("missing_edge", "hello", None),
            ("unreachable_node", "end", None),
        ],
    ),
    (
        flow([SEND, {"id": "hello", "type": "end"}], []),
        [
            ("duplicate_node", "hello", None),
        ],
    ),
    (
        flow([SEND, {"id": "x", "type": "teleport"}], [edge("hello", "x")]),
        [
            ("invalid_node", "x", None),
            ("dangling_edge", None, "edges[0]"),
            ("missing_edge", "hello", None),
        ],
    ),
]


@pytest.mark.parametrize(("raw", "expected"), CASES)
def test_problems(raw: dict[str, Any], expected: list[tuple[str, str | None, str | None]]) -> None:
    parsed, problems = validate(raw)
    assert parsed is None
    assert sorted((p.code, p.node_id, p.edge_id) for p in problems) == sorted(expected), problems


def test_every_problem_is_reported_at_once() -> None:
    raw = flow(
        [
            {"id": "hello", "type": "send_message", "text": ""},
            {"id": "lost", "type": "delay", "seconds": 0},
        ],
        [edge("hello", "nowhere", edge_id="bad")],
        start="missing",
    )
    _, problems = validate(raw)
    codes = {p.code for p in problems}
    assert {
        "empty_text",
        "invalid_duration",
        "no_start_node",
        "dangling_edge",
        "missing_edge",
    } <= codes
    # Each problem names where it is.
    assert all(p.node_id or p.edge_id or p.field for p in problems)
    empty = next(p for p in problems if p.code == "empty_text")
    assert empty.field == "nodes[0].text"


@pytest.mark.parametrize(
    ("raw", "count"),
    [({"nodes": [], "edges": []}, 1), (EVERY_TYPE, 0), (flow([SEND], []), 1)],
)
def test_launch_problems(raw: dict[str, Any], count: int) -> None:
    assert launch_problems(raw) == count


def test_an_attachment_may_go_without_a_caption() -> None:
    photo = "6f1e2db0-0000-4000-8000-000000000000"
    nodes: list[dict[str, Any]] = [
        {"id": "hello", "type": "send_message", "text": "", "attachment_id": photo},
        END,
    ]
    parsed, problems = validate(flow(nodes, [edge("hello", "end")]))
    assert problems == []
    assert parsed is not None
    assert parsed.nodes["hello"].attachment_id == photo
