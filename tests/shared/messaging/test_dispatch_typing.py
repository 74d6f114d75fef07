"""A handler is registered for the contracts whose payloads it takes.

The `type: ignore[arg-type]` lines are part of the test: mypy refuses those registrations, and
with warn_unused_ignores the typecheck fails the day it would accept them."""

from __future__ import annotations

import pytest

from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    AccountHealthChanged,
    CampaignCommandPayload,
    Decoded,
    ExecutionDue,
    account_events,
    campaign_commands,
    executions_due,
)
from shared.messaging.topics import Topic
from shared.runtime import Service
from shared.settings import Settings


def service() -> Service:
    settings = Settings(kafka_bootstrap="unused:9092", database_url="postgresql://unused/x")
    return Service("typing", settings, description="registrations only")


async def on_due(context: HandlerContext, message: Decoded[ExecutionDue]) -> None:
    raise AssertionError("registered, never called")


async def on_health(context: HandlerContext, message: Decoded[AccountHealthChanged]) -> None:
    raise AssertionError("registered, never called")


async def on_command(context: HandlerContext, message: Decoded[CampaignCommandPayload]) -> None:
    raise AssertionError("registered, never called")


def test_a_handler_of_a_topics_payloads_takes_each_of_its_contracts() -> None:
    registry = service()
    registry.handle(executions_due.DUE)(on_due)
    for contract in campaign_commands.CONTRACTS:
        registry.handle(contract)(on_command)
    assert registry.handlers[Topic.EXECUTIONS_DUE] == {"execution.due": on_due}
    commands = registry.handlers[Topic.CAMPAIGN_COMMANDS]
    assert set(commands) == {c.type.value for c in campaign_commands.CONTRACTS}
    assert set(commands.values()) == {on_command}


def test_a_handler_of_other_payloads_is_refused() -> None:
    registry = service()
    registry.handle(account_events.HEALTH_CHANGED)(on_command)  # type: ignore[arg-type]
    registry.handle(executions_due.DUE)(on_health)  # type: ignore[arg-type]
    # At run time only a second handler for one type is refused.
    with pytest.raises(ValueError, match=r"already handles execution\.due"):
        registry.handle(executions_due.DUE)(on_due)
