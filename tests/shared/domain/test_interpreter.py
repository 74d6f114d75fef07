"""The flow interpreter, node type by node type, and the A/B split's distribution."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.flows import Flow, validate
from shared.domain.interpreter import (
    Complete,
    Due,
    Event,
    ExecutionState,
    Fail,
    Outcome,
    Replied,
    Send,
    SendFailed,
    Sent,
    Stay,
    Wait,
    advance,
    choose_variant,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def parsed(nodes: list[dict[str, Any]], edges: list[tuple[str, str, str]]) -> Flow:
    raw = {
        "start": nodes[0]["id"],
        "nodes": nodes,
        "edges": [{"from": a, "to": b, "when": w} for a, b, w in edges],
    }
    flow, problems = validate(raw)
    assert flow is not None, problems
    return flow


END = {"id": "end", "type": "end"}
FLOWS = {
    "send": parsed(
        [{"id": "s", "type": "send_message", "text": "Hi {first_name}"}, END],
        [("s", "end", "next")],
    ),
    "delay": parsed([{"id": "d", "type": "delay", "seconds": 3600}, END], [("d", "end", "next")]),
    "content": parsed(
        [
            {
                "id": "s",
                "type": "send_message",
                "text": "{Hi|Hi} {first_name|there}",
                "attachment_id": "6f1e2db0-0000-4000-8000-000000000000",
            },
            END,
        ],
        [("s", "end", "next")],
    ),
    "wait": parsed(
        [
            {"id": "s", "type": "send_message", "text": "Hi"},
            {"id": "w", "type": "wait_for_reply", "timeout_seconds": 7200},
            {"id": "yes", "type": "send_message", "text": "Thanks"},
            {"id": "no", "type": "send_message", "text": "Ping"},
            END,
        ],
        [
            ("s", "w", "next"),
            ("w", "yes", "replied"),
            ("w", "no", "timed_out"),
            ("yes", "end", "next"),
            ("no", "end", "next"),
        ],
    ),
    "delay-wait": parsed(
        [
            {"id": "d", "type": "delay", "seconds": 3600},
            {"id": "w", "type": "wait_for_reply", "timeout_seconds": 7200},
            {"id": "yes", "type": "send_message", "text": "Thanks"},
            END,
        ],
        [
            ("d", "w", "next"),
            ("w", "yes", "replied"),
            ("w", "end", "timed_out"),
            ("yes", "end", "next"),
        ],
    ),
    "replied?": parsed(
        [
            {"id": "c", "type": "condition", "condition": {"kind": "replied"}},
            {"id": "t", "type": "end"},
            {"id": "f", "type": "end"},
        ],
        [("c", "t", "true"), ("c", "f", "false")],
    ),
    "tag?": parsed(
        [
            {"id": "c", "type": "condition", "condition": {"kind": "has_tag", "tag": "vip"}},
            {"id": "t", "type": "end"},
            {"id": "f", "type": "end"},
        ],
        [("c", "t", "true"), ("c", "f", "false")],
    ),
    "field?": parsed(
        [
            {
                "id": "c",
                "type": "condition",
                "condition": {"kind": "field_equals", "field": "tier", "value": "3"},
            },
            {"id": "t", "type": "end"},
            {"id": "f", "type": "end"},
        ],
        [("c", "t", "true"), ("c", "f", "false")],
    ),
    "tags": parsed(
        [
            {"id": "a", "type": "add_tag", "tag": "hot"},
            {"id": "r", "type": "remove_tag", "tag": "cold"},
            END,
        ],
        [("a", "r", "next"), ("r", "end", "next")],
    ),
    "split": parsed(
        [
            {
                "id": "ab",
                "type": "ab_split",
                "variants": [{"name": "a", "weight": 1}, {"name": "b", "weight": 1}],
            },
            {"id": "ta", "type": "end"},
            {"id": "tb", "type": "end"},
        ],
        [("ab", "ta", "a"), ("ab", "tb", "b")],
    ),
}


def at(node: str | None = None, **fields: Any) -> ExecutionState:
    return ExecutionState(execution_key="contact-1", node_id=node, **fields)


CASES: list[tuple[str, ExecutionState, Event, Outcome]] = [
    # flow, state, event -> outcome
    # send_message: renders, then moves on once the send is confirmed, fails if it failed.
    ("send", at(values={"first_name": "Ada"}), Due(T0), Send("s", "Hi Ada")),
    ("send", at(), Due(T0), Send("s", "Hi ")),
    ("send", at("s"), Sent(T0), Complete("end")),
    ("send", at("s"), SendFailed(T0, "privacy restricted"), Fail("s", "privacy restricted")),
    ("send", at("s"), Due(T0), Send("s", "Hi ")),  # unconfirmed: asked again
    ("send", at("end"), Sent(T0), Stay("end")),  # a repeated report changes nothing
    # content: a fallback, spintax, an attachment; a value too long for a caption fails it.
    (
        "content",
        at(),
        Due(T0),
        Send("s", "Hi there", "6f1e2db0-0000-4000-8000-000000000000"),
    ),
    (
        "content",
        at(values={"first_name": "Ada"}),
        Due(T0),
        Send("s", "Hi Ada", "6f1e2db0-0000-4000-8000-000000000000"),
    ),
    (
        "content",
        at(values={"first_name": "x" * 1022}),
        Due(T0),
        Fail("s", "the message renders to 1025 characters (limit 1024)"),
    ),
    (
        "send",
        at(values={"first_name": "x" * 4094}),
        Due(T0),
        Fail("s", "the message renders to 4097 characters (limit 4096)"),
    ),
    # delay: waits, an early Due keeps waiting, a due one moves on.
    ("delay", at(), Due(T0), Wait("d", T0 + HOUR)),
    ("delay", at("d", wait_until=T0 + HOUR), Due(T0 + HOUR / 2), Wait("d", T0 + HOUR)),
    ("delay", at("d", wait_until=T0 + HOUR), Due(T0 + HOUR), Complete("end")),
    ("delay", at("d", wait_until=T0 + HOUR), Replied(T0), Stay("d")),
    # wait_for_reply: a reply takes "replied", the timeout "timed_out".
    ("wait", at("s"), Sent(T0), Wait("w", T0 + 2 * HOUR)),
    (
        "wait",
        at("w", wait_until=T0 + 2 * HOUR, last_sent_at=T0),
        Replied(T0 + HOUR),
        Send("yes", "Thanks"),
    ),
    (
        "wait",
        at("w", wait_until=T0 + 2 * HOUR, last_sent_at=T0),
        Due(T0 + 2 * HOUR),
        Send("no", "Ping"),
    ),
    (
        "wait",
        at("w", wait_until=T0 + 2 * HOUR, last_sent_at=T0),
        Due(T0 + HOUR),
        Wait("w", T0 + 2 * HOUR),
    ),
    # a reply that arrived between the send and reaching the wait (during a delay) counts
    (
        "delay-wait",
        at("d", wait_until=T0 + HOUR, last_sent_at=T0 - HOUR, replied_at=T0),
        Due(T0 + HOUR),
        Send("yes", "Thanks"),
    ),
    # ... but not one from before the last send
    (
        "wait",
        at("s", replied_at=T0 - HOUR, last_sent_at=T0 - 2 * HOUR),
        Sent(T0),
        Wait("w", T0 + 2 * HOUR),
    ),
    # condition: replied, has tag, field equals
    ("replied?", at(replied_at=T0), Due(T0), Complete("t")),
    ("replied?", at(), Due(T0), Complete("f")),
    ("tag?", at(tags=frozenset({"vip"})), Due(T0), Complete("t")),
    ("tag?", at(tags=frozenset({"other"})), Due(T0), Complete("f")),
    ("field?", at(values={"tier": 3}), Due(T0), Complete("t")),
    ("field?", at(values={"tier": "2"}), Due(T0), Complete("f")),
    ("field?", at(), Due(T0), Complete("f")),
    # end
    ("send", at("end"), Due(T0), Complete("end")),
]


@pytest.mark.parametrize(("flow", "state", "event", "outcome"), CASES)
def test_advance(flow: str, state: ExecutionState, event: Event, outcome: Outcome) -> None:
    assert advance(FLOWS[flow], state, event).outcome == outcome


def test_tags_change_on_the_way_and_are_reported() -> None:
    step = advance(FLOWS["tags"], at(tags=frozenset({"cold", "x"})), Due(T0))
    assert step.outcome == Complete("end")
    assert step.state.tags == {"hot", "x"}
    assert step.tags_added == frozenset({"hot"})
    assert step.tags_removed == frozenset({"cold"})
    assert [v.node_id for v in step.visited] == ["a", "r", "end"]


def test_stop_on_reply_completes_the_execution() -> None:
    state = at("d", wait_until=T0 + HOUR)
    assert advance(FLOWS["delay"], state, Replied(T0), stop_on_reply=True).outcome == Complete("d")
    step = advance(FLOWS["delay"], state, Replied(T0))
    assert step.state.replied_at == T0  # remembered for conditions


def test_a_node_gone_from_the_flow_fails_with_a_reason() -> None:
    step = advance(FLOWS["send"], at("vanished"), Due(T0))
    assert isinstance(step.outcome, Fail)
    assert "vanished" in step.outcome.reason


def test_the_state_after_a_step_is_where_the_execution_stands() -> None:
    step = advance(FLOWS["wait"], at("s"), Sent(T0))
    assert (step.state.node_id, step.state.wait_until, step.state.last_sent_at) == (
        "w",
        T0 + 2 * HOUR,
        T0,
    )


def test_ab_split_is_deterministic_per_contact() -> None:
    flow = FLOWS["split"]
    first = advance(flow, ExecutionState("contact-42"), Due(T0))
    again = advance(flow, ExecutionState("contact-42"), Due(T0 + HOUR))
    assert first.outcome == again.outcome
    assert first.state.variant == again.state.variant


@pytest.mark.parametrize("weights", [(1, 1), (70, 30), (1, 9), (5, 3, 2)])
def test_ab_split_honours_its_weights(weights: tuple[int, ...]) -> None:
    names = [chr(ord("a") + i) for i in range(len(weights))]
    flow = parsed(
        [
            {
                "id": "ab",
                "type": "ab_split",
                "variants": [{"name": n, "weight": w} for n, w in zip(names, weights, strict=True)],
            },
            *({"id": f"t{n}", "type": "end"} for n in names),
        ],
        [("ab", f"t{n}", n) for n in names],
    )
    contacts = 20_000
    counts = Counter(choose_variant(flow.nodes["ab"], f"contact-{i}") for i in range(contacts))
    total = sum(weights)
    for name, weight in zip(names, weights, strict=True):
        expected = contacts * weight / total
        sigma = (contacts * (weight / total) * (1 - weight / total)) ** 0.5
        # Within 4 standard deviations of a fair draw: fails by chance about once in 15,000.
        assert abs(counts[name] - expected) < 4 * sigma, (name, counts)


def test_spintax_is_chosen_per_contact_and_step_and_kept_on_a_resend() -> None:
    flow = parsed(
        [
            {"id": "s", "type": "send_message", "text": "{a|b|c|d|e|f|g|h}"},
            {"id": "t", "type": "send_message", "text": "{a|b|c|d|e|f|g|h}"},
            END,
        ],
        [("s", "t", "next"), ("t", "end", "next")],
    )

    def text(key: str, node: str | None = None, event: Event | None = None) -> str:
        state = ExecutionState(execution_key=key, node_id=node)
        step = advance(flow, state, event or Due(T0))
        assert isinstance(step.outcome, Send)
        return step.outcome.text

    first = text("contact-1")
    assert text("contact-1", "s") == first  # unconfirmed send asked again: the same text
    assert len({text(f"contact-{i}") for i in range(100)}) == 8
    assert len({text(f"contact-{i}", "s", Sent(T0)) for i in range(100)}) == 8
    assert any(text(f"contact-{i}") != text(f"contact-{i}", "s", Sent(T0)) for i in range(20))


# Opportunities (issue 19, item 3): a node moves the contact's opportunity to a stage, a
# condition branches on the stage it stands in.
PIPELINE, OTHER_PIPELINE = (
    "00000000-0000-4000-8000-0000000000a1",
    "00000000-0000-4000-8000-0000000000a2",
)
NEW, WON = "00000000-0000-4000-8000-0000000000b1", "00000000-0000-4000-8000-0000000000b2"


def _move(node_id: str, stage: str) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": "set_opportunity_stage",
        "pipeline_id": PIPELINE,
        "stage_id": stage,
    }


def _on_stage(stage: str) -> dict[str, Any]:
    return {
        "id": "c",
        "type": "condition",
        "condition": {"kind": "opportunity_stage", "pipeline_id": PIPELINE, "stage_id": stage},
    }


T, F = {"id": "t", "type": "end"}, {"id": "f", "type": "end"}
STAGE_FLOWS = {
    # when they reply: moved to won, then a condition on won (sees the move at once)
    "reply-wins": parsed(
        [
            {"id": "w", "type": "wait_for_reply", "timeout_seconds": 3600},
            _move("m", WON),
            _on_stage(WON),
            T,
            F,
        ],
        [
            ("w", "m", "replied"),
            ("w", "f", "timed_out"),
            ("m", "c", "next"),
            ("c", "t", "true"),
            ("c", "f", "false"),
        ],
    ),
    "new?": parsed([_on_stage(NEW), T, F], [("c", "t", "true"), ("c", "f", "false")]),
    "twice": parsed(
        [_move("a", NEW), _move("b", WON), END], [("a", "b", "next"), ("b", "end", "next")]
    ),
}
WAITING = {"wait_until": T0 + HOUR, "last_sent_at": T0 - HOUR}


@pytest.mark.parametrize(
    ("flow", "state", "event", "outcome", "moves", "stands"),
    [
        # no opportunity yet: created in the stage (the sender creates it), condition true
        ("reply-wins", at("w", **WAITING), Replied(T0), Complete("t"), ((PIPELINE, WON),),
         {PIPELINE: WON}),
        # one in another stage: moved; one in another pipeline is kept
        ("reply-wins", at("w", **WAITING, opportunities={PIPELINE: NEW, OTHER_PIPELINE: NEW}),
         Replied(T0), Complete("t"), ((PIPELINE, WON),), {PIPELINE: WON, OTHER_PIPELINE: NEW}),
        # no reply: nothing moved
        ("reply-wins", at("w", **WAITING), Due(T0 + HOUR), Complete("f"), (), {}),
        # the condition: the stage it stands in, in that pipeline
        ("new?", at(opportunities={PIPELINE: NEW}), Due(T0), Complete("t"), (),
         {PIPELINE: NEW}),
        ("new?", at(opportunities={PIPELINE: WON}), Due(T0), Complete("f"), (),
         {PIPELINE: WON}),
        ("new?", at(opportunities={OTHER_PIPELINE: NEW}), Due(T0), Complete("f"), (),
         {OTHER_PIPELINE: NEW}),
        ("new?", at(), Due(T0), Complete("f"), (), {}),
        # two moves in one walk: the last one per pipeline is what the sender writes
        ("twice", at(), Due(T0), Complete("end"), ((PIPELINE, WON),), {PIPELINE: WON}),
    ],
)  # fmt: skip
def test_opportunity_stages_are_set_and_branched_on(
    flow: str,
    state: ExecutionState,
    event: Event,
    outcome: Outcome,
    moves: tuple[tuple[str, str], ...],
    stands: dict[str, str],
) -> None:
    step = advance(STAGE_FLOWS[flow], state, event)
    assert step.outcome == outcome
    assert step.stages_set == moves
    assert step.state.opportunities == stands
