"""Emitting through the outbox: the contract registry routes each payload, and a transaction
writes what it emitted exactly when it commits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from shared.domain.clock import FixedClock
from shared.messaging.contracts import (
    CONTRACTS,
    BulkActionProgress,
    BulkOperationProgress,
    CampaignCommand,
    CampaignStatusChanged,
    MessageType,
    Payload,
)
from shared.messaging.envelope import Actor, Cause, new_envelope
from shared.messaging.outbox import Outbox, UnroutableMessage, route
from shared.messaging.topics import Topic
from shared.messaging.transaction import transaction

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def status_changed(campaign_id: UUID) -> CampaignStatusChanged:
    return CampaignStatusChanged(
        campaign_id=campaign_id, previous_status="draft", status="active", enabled=True,
        cause="campaign.launch",
    )  # fmt: skip


def test_every_contract_is_reached_by_its_payload_and_type() -> None:
    for contract in CONTRACTS:
        assert route(contract.payload, contract.type) is contract


def test_the_registry_names_the_topic_type_and_version() -> None:
    campaign_id = uuid4()
    outbox = Outbox(clock=FixedClock(NOW))
    envelope = outbox.emit(status_changed(campaign_id), key=campaign_id)
    [record] = outbox.records
    assert (record.topic, record.key) == (Topic.CAMPAIGN_EVENTS.value, str(campaign_id))
    assert (envelope.type, envelope.version) == (MessageType.CAMPAIGN_STATUS_CHANGED.value, 1)
    assert record.headers["message-type"] == "campaign.status_changed"
    assert json.loads(record.value)["payload"]["campaign_id"] == str(campaign_id)
    assert envelope.occurred_at == NOW


def test_an_unregistered_payload_is_refused() -> None:
    class Stray(Payload):
        thing: int

    with pytest.raises(UnroutableMessage, match="Stray is not registered"):
        Outbox(clock=FixedClock(NOW)).emit(Stray(thing=1), key=None)


def test_a_payload_of_several_types_needs_its_type() -> None:
    progress = BulkOperationProgress(
        operation_id=uuid4(), action="stop", status="processing", total=1, processed=0,
        success_count=0, skipped_count=0, error_count=0, cancelled_executions=0,
    )  # fmt: skip
    outbox = Outbox(clock=FixedClock(NOW))
    with pytest.raises(UnroutableMessage, match="pass type="):
        outbox.emit(progress, key=progress.operation_id)
    with pytest.raises(UnroutableMessage, match=re.escape("not registered as 'campaign.launch'")):
        outbox.emit(progress, key=progress.operation_id, type=MessageType.CAMPAIGN_LAUNCH)
    with pytest.raises(UnroutableMessage, match="pass type="):
        outbox.emit(CampaignCommand(campaign_id=uuid4()), key=None)
    envelope = outbox.emit(
        progress, key=progress.operation_id, type=MessageType.BULK_OPERATION_COMPLETED
    )
    assert envelope.type == "bulk_operation.completed"
    assert outbox.records[0].topic == Topic.BULK_EVENTS.value
    assert route(BulkActionProgress, "bulk_action.completed").type == "bulk_action.completed"


def test_the_cause_carries_actor_and_correlation() -> None:
    actor = Actor(user_id=uuid4())
    command = new_envelope(
        type="campaign.pause", payload=CampaignCommand(campaign_id=uuid4()), occurred_at=NOW,
        actor=actor, correlation_id=uuid4(),
    )  # fmt: skip
    outbox = Outbox(clock=FixedClock(NOW))
    answer = outbox.emit(status_changed(uuid4()), key=None, cause=command)
    assert (answer.actor, answer.correlation_id, answer.causation_id) == (
        actor, command.correlation_id, command.message_id,
    )  # fmt: skip
    fresh = outbox.emit(status_changed(uuid4()), key=None, at=NOW + timedelta(seconds=1))
    assert (fresh.actor, fresh.causation_id, fresh.correlation_id) == (
        None, None, fresh.message_id,
    )  # fmt: skip
    assert fresh.occurred_at == NOW + timedelta(seconds=1)
    caused = outbox.emit(
        status_changed(uuid4()), key=None, cause=Cause(causation_id=command.message_id)
    )
    assert (caused.causation_id, caused.correlation_id) == (command.message_id, caused.message_id)


def test_an_outbox_without_a_clock_needs_the_time() -> None:
    with pytest.raises(ValueError, match="at="):
        Outbox().emit(status_changed(uuid4()), key=None)


async def outbox_ids(pool: asyncpg.Pool[Any]) -> set[str]:
    return {str(r["message_id"]) for r in await pool.fetch("SELECT message_id FROM outbox")}


async def emit_then_fail(pool: asyncpg.Pool[Any]) -> None:
    async with transaction(pool, FixedClock(NOW)) as tx:
        tx.outbox.emit(status_changed(uuid4()), key=None)
        raise RuntimeError("boom")


async def test_a_transaction_writes_its_outbox_when_it_commits(pool: asyncpg.Pool[Any]) -> None:
    async with transaction(pool, FixedClock(NOW)) as tx:
        committed = tx.outbox.emit(status_changed(uuid4()), key=None)
        assert await tx.connection.fetchval("SELECT 1") == 1
    assert await outbox_ids(pool) == {str(committed.message_id)}
    with pytest.raises(RuntimeError, match="boom"):
        await emit_then_fail(pool)
    assert await outbox_ids(pool) == {str(committed.message_id)}
