"""The scheduler dies between the outbox write and consumption; after a restart the command
is applied exactly once, and a redelivered copy changes nothing."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx
import pytest

from dripline.processes import ServiceProcess
from shared.messaging.topics import Topic
from tests.builders import launchable
from tests.e2e.conftest import Stack
from tests.support import eventually, produce, read_topic, topic


async def consumed(process: ServiceProcess, outcome: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{process.url}/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("dripline_messages_consumed_total{") and f'outcome="{outcome}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.settings(command_wait_s=1.0)
async def test_a_killed_scheduler_applies_the_command_exactly_once_after_restart(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    campaign = await launchable(stack.api, "crash")
    stack["scheduler"].kill()  # SIGKILL: no graceful anything

    # The API cannot get an answer in time: it says the command was accepted.
    response = await stack.api.post(
        f"/campaign-flows/{campaign['id']}/launch", timeout=httpx.Timeout(60)
    )
    assert response.status_code == 202, response.text
    command_id = response.json()["command_id"]

    async def published() -> Any:
        return await pool.fetchval("SELECT sent_at FROM outbox WHERE message_id = $1", command_id)

    await eventually(published)  # the command is on Kafka, nobody has consumed it
    status = await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign["id"])
    assert status == "draft"

    stack["scheduler"].start()
    await stack["scheduler"].wait_healthy()

    async def active() -> bool:
        status = await pool.fetchval("SELECT status FROM campaigns WHERE id = $1", campaign["id"])
        return bool(status == "active")

    await eventually(active)

    # Deliver the very same command again, as a producer retry or a rebalance would.
    [original] = [
        r for r in await read_topic(
            stack.settings.bootstrap_servers, topic(stack.settings, Topic.CAMPAIGN_COMMANDS),
            expected=1,
        ) if json.loads(r.value)["message_id"] == command_id
    ]  # fmt: skip
    await produce(
        stack.settings.bootstrap_servers, topic(stack.settings, Topic.CAMPAIGN_COMMANDS),
        original.value, original.key,
    )  # fmt: skip
    await eventually(lambda: _at_least(consumed(stack["scheduler"], "duplicate"), 1))

    events = await pool.fetch(
        "SELECT headers->>'message-type' AS type FROM outbox"
        " WHERE topic = 'dripline.campaign.events'"
        " AND convert_from(value, 'UTF8')::jsonb->>'causation_id' = $1",
        command_id,
    )
    assert [e["type"] for e in events] == ["campaign.status_changed"]  # no second outcome
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'scheduler' AND message_id = $1",
            command_id,
        )
        == 1
    )

    async def stats_saw_the_launch() -> Any:
        return await pool.fetchval(
            "SELECT count(*) FROM campaign_activities WHERE campaign_id = $1"
            " AND type = 'campaign.status_changed'",
            campaign["id"],
        )

    assert await eventually(stats_saw_the_launch) == 1


async def _at_least(value: Any, minimum: float) -> bool:
    return bool(await value >= minimum)
