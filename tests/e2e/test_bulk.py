"""Bulk operations through the real services: requested by another system over Kafka, answered
on dripline.bulk.events; malformed requests dead-lettered; and a scheduler killed in the middle
of an operation finishes it after a restart with every campaign changed exactly once."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from shared.domain.bulk_operations import BulkAction
from shared.messaging.contracts import BulkOperationRequest
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from tests.builders import command, launchable, ok
from tests.e2e.conftest import Stack
from tests.support import eventually, find_on_topic, produce, read_topic, topic


async def seed_active(pool: asyncpg.Pool[Any], owner: UUID, campaigns: int) -> list[UUID]:
    """Active campaigns with two pending executions each, written directly."""
    contacts = [
        await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, $2) RETURNING id",
            owner,
            f"bulk_contact_{i}",
        )
        for i in range(2)
    ]
    ids: list[UUID] = [
        r["id"]
        for r in await pool.fetch(
            "INSERT INTO campaigns (created_by, name, status, launched_at)"
            " SELECT $1, 'Seeded ' || n, 'active', now() FROM generate_series(1, $2) AS n"
            " RETURNING id",
            owner,
            campaigns,
        )
    ]
    await pool.execute(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at)"
        " SELECT c, p, 'pending', now() + interval '1 day'"
        " FROM unnest($1::uuid[]) AS c, unnest($2::uuid[]) AS p",
        ids,
        contacts,
    )
    return ids


async def bulk_events(stack: Stack, correlation_id: UUID) -> list[dict[str, Any]]:
    records = await find_on_topic(
        stack.settings.bootstrap_servers,
        topic(stack.settings, Topic.BULK_EVENTS),
        lambda r: (
            json.loads(r.value)["correlation_id"] == str(correlation_id)
            and json.loads(r.value)["type"] == "bulk_operation.completed"
        ),
    )
    assert records
    everything = await read_topic(
        stack.settings.bootstrap_servers, topic(stack.settings, Topic.BULK_EVENTS), expected=1
    )
    events = [json.loads(r.value) for r in everything]
    return [e for e in events if e["correlation_id"] == str(correlation_id)]


def request_by(actor: Actor, **payload: Any) -> Any:
    return new_envelope(
        type="bulk_operation.requested",
        payload=BulkOperationRequest(operation_id=uuid4(), **payload),
        occurred_at=datetime.now(UTC),
        actor=actor,
        correlation_id=uuid4(),
    )


async def test_a_bulk_command_from_another_system_is_applied_with_its_actors_permissions(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    running = await launchable(stack.api, "Kafka running", contacts=2)
    ok(await command(stack.api, running["id"], "launch"))
    draft = await launchable(stack.api, "Kafka draft", contacts=1)
    missing = uuid4()
    request = request_by(
        Actor(user_id=stack.user_id),
        action=BulkAction.STOP,
        campaign_ids=[UUID(running["id"]), UUID(draft["id"]), missing],
    )
    bootstrap = stack.settings.bootstrap_servers
    operation_id = request.payload["operation_id"]
    await produce(
        bootstrap, topic(stack.settings, Topic.BULK_COMMANDS), request.to_bytes(),
        operation_id.encode(),
    )  # fmt: skip
    events = await bulk_events(stack, request.correlation_id)
    assert [e["type"] for e in events] == [
        "bulk_operation.progressed",  # started: the selection resolved
        "bulk_operation.progressed",  # the batch, with each campaign's outcome
        "bulk_operation.completed",
    ]
    items = {i["campaign_id"]: (i["result"], i["code"]) for i in events[1]["payload"]["items"]}
    assert items == {
        running["id"]: ("succeeded", "stopped"),
        draft["id"]: ("skipped", "invalid_status"),
        str(missing): ("failed", "campaign_not_found"),
    }
    final = events[2]["payload"]
    counts = ("status", "total", "success_count", "skipped_count", "error_count",
              "cancelled_executions")  # fmt: skip
    assert [final[c] for c in counts] == ["completed", 3, 1, 1, 1, 2]
    recorded = await pool.fetchrow(
        "SELECT origin, requested_by, correlation_id FROM bulk_operations WHERE id = $1",
        UUID(operation_id),
    )
    assert recorded is not None
    assert (recorded["origin"], recorded["requested_by"], recorded["correlation_id"]) == (
        "kafka",
        stack.user_id,
        request.correlation_id,
    )
    # The same operation through the API, as its requester sees it.
    seen = ok(await stack.api.get(f"/bulk-operations/{operation_id}"))
    assert (seen["status"], seen["origin"], seen["error_count"]) == ("completed", "kafka", 1)


async def test_a_stranger_over_kafka_changes_nothing(stack: Stack, pool: asyncpg.Pool[Any]) -> None:
    running = await launchable(stack.api, "Not yours", contacts=1)
    ok(await command(stack.api, running["id"], "launch"))
    stranger = await pool.fetchval(
        "INSERT INTO users (email) VALUES ('stranger@example.com') RETURNING id"
    )
    unknown = uuid4()
    bootstrap = stack.settings.bootstrap_servers
    commands = topic(stack.settings, Topic.BULK_COMMANDS)
    by_stranger = request_by(
        Actor(user_id=stranger), action=BulkAction.DELETE, campaign_ids=[UUID(running["id"])]
    )
    by_nobody = request_by(
        Actor(user_id=unknown), action=BulkAction.STOP, campaign_ids=[UUID(running["id"])]
    )
    for request in (by_stranger, by_nobody):
        await produce(bootstrap, commands, request.to_bytes(), b"k")
    stranger_events = await bulk_events(stack, by_stranger.correlation_id)
    assert stranger_events[-1]["payload"]["error_count"] == 1
    assert stranger_events[1]["payload"]["items"][0]["code"] == "campaign_not_found"
    [nobody] = await bulk_events(stack, by_nobody.correlation_id)
    assert (nobody["payload"]["status"], nobody["payload"]["error_message"]) == (
        "failed",
        "the actor is not a known user",
    )
    status = await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", running["id"])
    assert status == "active"


async def test_a_malformed_bulk_command_goes_to_the_dead_letter_topic_with_the_reason(
    stack: Stack,
) -> None:
    body = {
        "message_id": str(uuid4()),
        "type": "bulk_operation.requested",
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "actor": {"user_id": str(stack.user_id)},
        "correlation_id": str(uuid4()),
        "payload": {"operation_id": str(uuid4()), "action": "stop"},
    }
    value = json.dumps(body).encode()
    await produce(
        stack.settings.bootstrap_servers, topic(stack.settings, Topic.BULK_COMMANDS), value, b"k"
    )
    # Both groups reading the topic (the scheduler's, and the API's for bulk_action.requested,
    # docs/kafka.md) decode it, and each dead-letters it with the reason.
    letters = await read_topic(
        stack.settings.bootstrap_servers, topic(stack.settings, Topic.BULK_COMMANDS.dlq),
        expected=2,
    )  # fmt: skip
    by_consumer = {
        headers["dlq-consumer"]: (letter, headers)
        for letter in letters
        for headers in [{k: v.decode() for k, v in letter.headers}]
    }
    assert set(by_consumer) == {"scheduler", "api"}
    for letter, headers in by_consumer.values():
        assert letter.value == value
        assert "give either campaign_ids or filter" in headers["dlq-reason"]


@pytest.mark.settings(bulk_batch_size=1)
async def test_a_scheduler_killed_mid_operation_finishes_it_exactly_once(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    ids = await seed_active(pool, stack.user_id, campaigns=150)
    accepted = await stack.api.post(
        "/campaign-flows/bulk", json={"action": "stop", "campaign_ids": [str(i) for i in ids]}
    )
    assert accepted.status_code == 202, accepted.text
    operation_id = UUID(accepted.json()["id"])

    async def under_way() -> Any:
        # No row until the scheduler has recorded the operation from its command.
        processed = await pool.fetchval(
            "SELECT processed FROM bulk_operations WHERE id = $1", operation_id
        )
        return (processed is not None and processed >= 3) or None

    await eventually(under_way, interval_s=0.01)
    stack["scheduler"].kill()  # SIGKILL, between two batches or inside one
    interrupted = await pool.fetchrow(
        "SELECT status, processed FROM bulk_operations WHERE id = $1", operation_id
    )
    assert interrupted is not None
    assert (interrupted["status"], interrupted["processed"] < 150) == ("processing", True)

    stack["scheduler"].start()
    await stack["scheduler"].wait_healthy()

    async def finished() -> Any:
        found = ok(await stack.api.get(f"/bulk-operations/{operation_id}"))
        return found if found["status"] == "completed" else None

    done = await eventually(finished, timeout_s=60)
    assert (done["total"], done["processed"], done["success_count"], done["error_count"]) == (
        150,
        150,
        150,
        0,
    )
    assert done["cancelled_executions"] == 300
    items = await pool.fetch(
        "SELECT status, cancelled_executions FROM bulk_operation_items"
        " WHERE bulk_operation_id = $1",
        operation_id,
    )
    assert {(r["status"], r["cancelled_executions"]) for r in items} == {("succeeded", 2)}
    assert len(items) == 150
    left = await pool.fetchval(
        "SELECT count(*) FROM executions WHERE campaign_id = ANY($1::uuid[])"
        " AND status <> 'cancelled'",
        ids,
    )
    assert left == 0
    # Exactly once: each campaign has one status change from this operation. (The relay may
    # publish a record twice after the kill, under the same message id; consumers drop those.)
    correlation = str(
        await pool.fetchval(
            "SELECT correlation_id FROM bulk_operations WHERE id = $1", operation_id
        )
    )
    changes = await find_on_topic(
        stack.settings.bootstrap_servers,
        topic(stack.settings, Topic.CAMPAIGN_EVENTS),
        lambda r: json.loads(r.value)["correlation_id"] == correlation,
    )
    per_campaign: dict[str, set[str]] = defaultdict(set)
    for record in changes:
        event = json.loads(record.value)
        per_campaign[event["payload"]["campaign_id"]].add(event["message_id"])
    assert len(per_campaign) == 150
    assert {len(messages) for messages in per_campaign.values()} == {1}


@pytest.mark.settings(bulk_batch_size=10, sweep_interval_s=3600)
async def test_an_operation_of_several_batches_is_applied_at_once_not_at_the_next_sweep(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    """The request's handler resolves the selection and wakes the workers, which apply every
    batch side by side. Before, it applied the first batch itself and the workers found the
    rest at their next sweep (an hour here), one batch's time later at best."""
    ids = await seed_active(pool, stack.user_id, campaigns=30)
    answer = await stack.api.post(
        "/campaign-flows/bulk",
        json={"action": "stop", "campaign_ids": [str(i) for i in ids], "wait": 20},
    )
    assert answer.status_code == 200, answer.text
    done = answer.json()
    assert (done["status"], done["processed"], done["success_count"]) == ("completed", 30, 30)
    assert done["cancelled_executions"] == 60
