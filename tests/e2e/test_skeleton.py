"""The walking skeleton through the real services: HTTP -> outbox -> Kafka -> scheduler ->
outbox -> Kafka -> stats, and the launch call answering with the campaign as it now stands."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.builders import launchable
from tests.e2e.conftest import Stack
from tests.support import eventually


async def test_launch_makes_the_campaign_active_and_stats_see_it(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    campaign = await launchable(stack.api, "Spring promo")
    assert campaign["status"] == "draft"

    launched = await stack.api.post(f"/campaign-flows/{campaign['id']}/launch")
    assert launched.status_code == 200, launched.text
    assert launched.json()["status"] == "active"
    assert launched.json()["launched_at"] is not None

    read = await stack.api.get(f"/campaign-flows/{campaign['id']}")
    assert read.json()["status"] == "active"

    async def stats_recorded() -> Any:
        return await pool.fetchrow(
            "SELECT s.total_contacts, a.type, a.summary FROM campaign_stats s "
            "JOIN campaign_activities a USING (campaign_id) WHERE s.campaign_id = $1"
            " AND a.type = 'campaign.status_changed'",
            campaign["id"],
        )

    row = await eventually(stats_recorded)
    assert row["total_contacts"] == 1
    assert row["type"] == "campaign.status_changed"
    assert row["summary"] == "Status changed from draft to active"

    again = await stack.api.post(f"/campaign-flows/{campaign['id']}/launch")
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "invalid_status"


async def test_lists_page_with_a_cursor(stack: Stack) -> None:
    ids = []
    for i in range(5):
        response = await stack.api.post("/campaign-flows", json={"name": f"c{i}"})
        ids.append(response.json()["id"])
    first = (await stack.api.get("/campaign-flows", params={"limit": 3})).json()
    second = (
        await stack.api.get("/campaign-flows", params={"limit": 3, "cursor": first["next_cursor"]})
    ).json()
    assert [c["id"] for c in first["items"] + second["items"]] == ids[::-1]
    assert second["next_cursor"] is None
    bad = await stack.api.get("/campaign-flows", params={"cursor": "garbage"})
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"


async def test_authentication_and_visibility(stack: Stack, pool: asyncpg.Pool[Any]) -> None:
    created = (await stack.api.post("/campaign-flows", json={"name": "mine"})).json()
    async with httpx.AsyncClient(base_url=stack["api"].url) as anonymous:
        missing = await anonymous.get("/campaign-flows")
        wrong = await anonymous.get(
            "/campaign-flows", headers={"Authorization": "Bearer dl_not_a_key"}
        )
    assert missing.status_code == wrong.status_code == 401
    assert missing.json()["code"] == "unauthorized"

    from services.api.accounts import create_user_with_key

    async with pool.acquire() as connection:
        stranger = await create_user_with_key(connection, "stranger@example.com")
    async with httpx.AsyncClient(
        base_url=stack["api"].url, headers={"Authorization": f"Bearer {stranger.plaintext}"}
    ) as other:
        hidden = await other.get(f"/campaign-flows/{created['id']}")
        launch = await other.post(f"/campaign-flows/{created['id']}/launch")
        listed = await other.get("/campaign-flows")
    assert hidden.status_code == launch.status_code == 404
    assert hidden.json()["code"] == "campaign_not_found"
    assert listed.json()["items"] == []


async def test_invalid_input_is_a_specific_problem(stack: Stack) -> None:
    response = await stack.api.post(
        "/campaign-flows",
        json={"name": "", "timezone": "Mars/Olympus", "launch_type": "schedule", "extra": 1},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_error"
    fields = {error["field"] for error in body["errors"]}
    assert {"name", "timezone", "extra"} <= fields


async def test_every_service_reports_health_and_metrics(stack: Stack) -> None:
    async with httpx.AsyncClient() as client:
        for process in stack.processes.values():
            health = await client.get(f"{process.url}/health")
            assert health.status_code == 200
            assert health.json()["checks"] == {"database": "ok", "broker": "ok"}
            metrics = await client.get(f"{process.url}/metrics")
            assert "dripline_outbox_relay_leader" in metrics.text
    leaders = 0
    async with httpx.AsyncClient() as client:
        for process in stack.processes.values():
            text = (await client.get(f"{process.url}/metrics")).text
            leaders += "dripline_outbox_relay_leader 1.0" in text
    assert leaders == 1  # exactly one relay publishes for the database
