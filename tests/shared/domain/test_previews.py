"""Test sends: what a step renders to for one contact, and when one may not go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import flows, interpreter
from shared.domain.previews import (
    Preview,
    Refusal,
    RefusalCode,
    account_refusal,
    preview,
    rate_refusal,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ATTACHMENT = "5f0c1a7e-0d7b-4f7e-8b1e-1f0d3c2b4a50"
FLOW, PROBLEMS = flows.validate(
    {
        "start": "hello",
        "nodes": [
            {"id": "hello", "type": "send_message", "text": "{Hi|Hello|Hey} {first_name|there}!"},
            {"id": "pause", "type": "delay", "seconds": 60},
            {
                "id": "offer",
                "type": "send_message",
                "text": "See {fields.plan}",
                "attachment_id": ATTACHMENT,
            },
            {"id": "long", "type": "send_message", "text": "{first_name}"},
            {"id": "done", "type": "end"},
        ],
        "edges": [
            {"from": "hello", "to": "pause"},
            {"from": "pause", "to": "offer"},
            {"from": "offer", "to": "long"},
            {"from": "long", "to": "done"},
        ],
    }
)


def test_the_flow_is_valid() -> None:
    assert FLOW is not None, PROBLEMS


@pytest.mark.parametrize(
    ("node_id", "values", "expected"),
    [
        ("hello", {"first_name": ""}, "there!"),
        ("hello", {"first_name": "Ada"}, "Ada!"),
        ("offer", {"plan": "Pro"}, Preview("offer", "See Pro", ATTACHMENT)),
        ("pause", {}, RefusalCode.NOT_A_SEND_STEP),
        ("nowhere", {}, RefusalCode.NODE_NOT_FOUND),
        ("long", {"first_name": "x" * 4097}, RefusalCode.MESSAGE_TOO_LONG),
    ],
)
def test_a_step_renders_as_the_sender_renders_it_or_is_refused(
    node_id: str, values: dict[str, object], expected: object
) -> None:
    got = preview(FLOW, node_id, "contact-1", values)
    match expected:
        case RefusalCode():
            assert isinstance(got, Refusal)
            assert got.code is expected
        case Preview():
            assert got == expected
        case str():
            assert isinstance(got, Preview)
            assert got.text.endswith(expected)
            assert got.attachment_id is None


def test_the_spintax_is_the_one_the_contacts_execution_gets() -> None:
    assert FLOW is not None, PROBLEMS
    values = {"first_name": "Ada"}
    for key in ("contact-1", "contact-2", "contact-3", "contact-4"):
        got = preview(FLOW, "hello", key, values)
        state = interpreter.ExecutionState(execution_key=key, node_id=None, values=values)
        step = interpreter.advance(FLOW, state, interpreter.Due(NOW))
        assert isinstance(got, Preview)
        assert isinstance(step.outcome, interpreter.Send)
        assert got.text == step.outcome.text


def test_an_invalid_flow_is_refused() -> None:
    got = preview(None, "hello", "contact-1", {})
    assert isinstance(got, Refusal)
    assert got.code is RefusalCode.FLOW_INVALID


@pytest.mark.parametrize(
    ("health", "deleted", "cooldown_until", "expected"),
    [
        ("active", False, None, None),
        ("warming", False, NOW - timedelta(seconds=1), None),
        (None, False, None, RefusalCode.NO_ACCOUNT),
        ("active", True, None, RefusalCode.ACCOUNT_UNAVAILABLE),
        ("disconnected", False, None, RefusalCode.ACCOUNT_UNAVAILABLE),
        ("banned", False, None, RefusalCode.ACCOUNT_UNAVAILABLE),
        ("limited", False, None, RefusalCode.ACCOUNT_UNAVAILABLE),
        ("active", False, NOW + timedelta(seconds=30), RefusalCode.ACCOUNT_UNAVAILABLE),
    ],
)
def test_only_a_live_account_sends_a_test(
    health: str | None, deleted: bool, cooldown_until: datetime | None, expected: RefusalCode | None
) -> None:
    got = account_refusal(health, deleted, cooldown_until, NOW)
    assert (got.code if got else None) is expected


@pytest.mark.parametrize(
    ("ages_s", "expected_wait"),
    [
        ([], None),
        ([1, 2, 3, 4], None),
        ([1, 2, 3, 4, 5], 55),  # the oldest of the five leaves the window in 55 s
        ([60, 61, 2, 3, 4, 5], None),  # a minute old no longer counts
        ([59.5, 2, 3, 4, 5], 1),
        ([10, 10, 10, 10, 10, 10], 50),
    ],
)
def test_at_most_five_test_sends_a_minute_per_account(
    ages_s: list[float], expected_wait: int | None
) -> None:
    got = rate_refusal([NOW - timedelta(seconds=s) for s in ages_s], NOW)
    if expected_wait is None:
        assert got is None
    else:
        assert got is not None
        assert (got.code, got.retry_after_s) == (RefusalCode.RATE_LIMITED, expected_wait)
