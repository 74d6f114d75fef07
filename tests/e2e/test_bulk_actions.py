"""Bulk actions over contacts through the real services: every batch released exactly once with
two schedulers racing, or with one killed in the middle; a one-off message sent through the
sender at the account's pace; progress on dripline.bulk.events."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from dripline.infra import free_port
from dripline.processes import ServiceProcess
from shared.file_clock import FileClock
from shared.messaging.topics import Topic
from tests.builders import ok
from tests.e2e.conftest import Stack
from tests.support import eventually, find_on_topic, topic

CLOCK = Path(tempfile.mkdtemp(prefix="dripline-clock-")) / "now"


async def seed_contacts(pool: asyncpg.Pool[Any], owner: UUID, count: int, tag: str) -> None:
    await pool.execute(
        "INSERT INTO contacts (owner_user_id, telegram_username, tags)"
        " SELECT $1, $3 || n, ARRAY[$3] FROM generate_series(1, $2) AS n",
        owner,
        count,
        tag,
    )


async def progress_events(stack: Stack, action_id: str) -> list[dict[str, Any]]:
    """The action's events, one per message id (the relay may publish a record twice after a
    crash; consumers drop the repeat by its id)."""
    records = await find_on_topic(
        stack.settings.bootstrap_servers,
        topic(stack.settings, Topic.BULK_EVENTS),
        lambda r: json.loads(r.value)["payload"].get("action_id") == action_id,
    )
    unique = {json.loads(r.value)["message_id"]: json.loads(r.value) for r in records}
    return list(unique.values())


async def batch_numbers(pool: asyncpg.Pool[Any], action_id: str) -> Counter[int]:
    rows = await pool.fetch(
        "SELECT batch_number FROM bulk_action_items WHERE bulk_action_id = $1", action_id
    )
    return Counter(r["batch_number"] for r in rows)


@pytest.mark.settings(clock_file=CLOCK)
async def test_two_schedulers_release_each_drip_batch_exactly_once(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    FileClock.set(CLOCK, start)
    second = ServiceProcess(
        "scheduler", stack.settings.model_copy(update={"scheduler_port": free_port()})
    )
    second.start()
    try:
        await second.wait_healthy()
        await seed_contacts(pool, stack.user_id, 40, "racing")
        action = ok(
            await stack.api.post(
                "/bulk-actions",
                json={
                    "name": "Raced",
                    "action": "add_tags",
                    "params": {"tags": ["raced"]},
                    "filter": {"tags": ["racing"]},
                    "mode": "drip",
                    "drip": {"batch_size": 5, "every": 10, "unit": "minutes"},
                },
            ),
            201,
        )
        for batch in range(1, 9):

            async def released(expected: int = batch) -> Any:
                found = ok(await stack.api.get(f"/bulk-actions/{action['id']}"))
                return found if found["batches"] >= expected else None

            found = await eventually(released)
            assert found["processed"] == 5 * batch
            FileClock.set(CLOCK, start + timedelta(minutes=10 * batch))
    finally:
        assert second.stop() == 0
    done = ok(await stack.api.get(f"/bulk-actions/{action['id']}"))
    assert (done["status"], done["batches"], done["success_count"]) == ("completed", 8, 40)
    assert await batch_numbers(pool, action["id"]) == Counter(dict.fromkeys(range(1, 9), 5))
    events = await progress_events(stack, action["id"])
    progressed = sorted(e["payload"]["batch"] for e in events if e["type"].endswith("progressed"))
    assert progressed == list(range(1, 9))  # each batch announced once
    assert [e["type"] for e in events].count("bulk_action.completed") == 1


async def test_a_killed_scheduler_leaves_no_batch_half_released(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    await seed_contacts(pool, stack.user_id, 20_000, "many")
    action = ok(
        await stack.api.post(
            "/bulk-actions",
            json={"name": "Big tagging", "action": "add_tags", "params": {"tags": ["done"]},
                  "filter": {"tags": ["many"]}},
        ),
        201,
    )  # fmt: skip

    async def under_way() -> Any:
        done = await pool.fetchval(
            "SELECT processed FROM bulk_actions WHERE id = $1", UUID(action["id"])
        )
        return done >= 1000 or None

    await eventually(under_way, interval_s=0.01)
    stack["scheduler"].kill()
    interrupted = await pool.fetchval(
        "SELECT processed FROM bulk_actions WHERE id = $1", UUID(action["id"])
    )
    assert 1000 <= interrupted < 20_000
    stack["scheduler"].start()
    await stack["scheduler"].wait_healthy()

    async def completed() -> Any:
        found = ok(await stack.api.get(f"/bulk-actions/{action['id']}"))
        return found if found["status"] == "completed" else None

    done = await eventually(completed, timeout_s=90)
    assert (done["total"], done["processed"], done["success_count"]) == (20_000, 20_000, 20_000)
    numbers = await batch_numbers(pool, action["id"])
    assert sorted(numbers) == list(range(1, 21))
    assert set(numbers.values()) == {1000}
    tagged = await pool.fetchval("SELECT count(*) FROM contacts WHERE tags @> ARRAY['done']")
    assert tagged == 20_000
    events = await progress_events(stack, action["id"])
    progressed = sorted(e["payload"]["batch"] for e in events if e["type"].endswith("progressed"))
    assert progressed == list(range(1, 21))


async def test_a_one_off_message_goes_out_through_the_sender(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    sender = ok(
        await stack.api.post(
            "/telegram-accounts",
            json={"display_name": "Announcer", "warm": True,
                  "pacing": {"min_gap_s": 0, "jitter_s": 0}},
        ),
        201,
    )  # fmt: skip
    await seed_contacts(pool, stack.user_id, 3, "news")
    action = ok(
        await stack.api.post(
            "/bulk-actions",
            json={"name": "News", "action": "send_message", "filter": {"tags": ["news"]},
                  "params": {"telegram_account_id": sender["id"], "text": "Big news!"}},
        ),
        201,
    )  # fmt: skip

    async def all_sent() -> Any:
        stats = ok(await stack.api.get(f"/bulk-actions/{action['id']}/statistics"))
        return stats if stats["sends"] == {"completed": 3} else None

    await eventually(all_sent, timeout_s=30)
    accepted = await pool.fetch("SELECT peer, body FROM simulator_messages ORDER BY peer")
    assert [(r["peer"], r["body"]) for r in accepted] == [
        (f"news{i}", "Big news!") for i in (1, 2, 3)
    ]
    items = ok(await stack.api.get(f"/bulk-actions/{action['id']}/items"))["items"]
    assert {(i["status"], i["send_status"]) for i in items} == {("succeeded", "completed")}
    events = await progress_events(stack, action["id"])
    assert [e["type"] for e in events] == ["bulk_action.progressed", "bulk_action.completed"]
    assert events[-1]["payload"]["success_count"] == 3
