"""Campaigns actually run: through the scheduler's dispatch, the sender and the simulated
Telegram, with replies steering the flow, to completion; nothing sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from tests.builders import BRANCHING_FLOW, FAST, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

# hello -> a pause -> a question -> wait for a reply: thanks, or a goodbye when it times out
SIMULATION = {
    "contacts": {
        "ada_talks": {"reply_after_s": 0.5, "read_after_s": 0.2},
        "bob_silent": {"read_after_s": 0.2},
    }
}


async def test_a_campaign_runs_both_branches_to_completion(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Sim", "simulation": SIMULATION, "pacing": FAST},
        ),
        201,
    )
    created = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Branches",
                "telegram_account_id": account["id"],
                "flow": BRANCHING_FLOW,
                "settings": {"response_handling": {"stop_on_reply": False}},
            },
        ),
        201,
    )
    ada = await contact(api, "ada_talks", first_name="Ada")
    bob = await contact(api, "bob_silent", first_name="Bob")
    await add_contacts(api, created["id"], [ada["id"], bob["id"]])
    assert ok(await api.post(f"/campaign-flows/{created['id']}/launch"))["status"] == "active"

    async def completed() -> Any:
        campaign = ok(await api.get(f"/campaign-flows/{created['id']}"))
        return campaign if campaign["status"] == "completed" else None

    await eventually(completed, timeout_s=60)
    sent = await pool.fetch(
        "SELECT c.telegram_username, m.node_id, m.body, m.status FROM messages m"
        " JOIN contacts c ON c.id = m.contact_id WHERE m.campaign_id = $1"
        " AND m.direction = 'outgoing' ORDER BY c.telegram_username, m.created_at",
        created["id"],
    )
    assert [(r["telegram_username"], r["node_id"], r["body"]) for r in sent] == [
        ("ada_talks", "hello", "Hi Ada!"),
        ("ada_talks", "ask", "Any thoughts, Ada?"),
        ("ada_talks", "thanks", "Thanks!"),
        ("bob_silent", "hello", "Hi Bob!"),
        ("bob_silent", "ask", "Any thoughts, Bob?"),
        ("bob_silent", "bye", "Bye for now"),
    ]

    # Reads and replies are the only delivery confirmations; every message gets one (the last
    # ones are read shortly after the run has finished).
    async def all_confirmed() -> bool:
        statuses = await pool.fetch(
            "SELECT DISTINCT status FROM messages WHERE campaign_id = $1"
            " AND direction = 'outgoing'",
            created["id"],
        )
        return {r["status"] for r in statuses} <= {"delivered", "read"}

    await eventually(all_confirmed)
    # Exactly one message per send on the simulated Telegram's side.
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 6
    replies = await pool.fetchval(
        "SELECT count(*) FROM messages WHERE campaign_id = $1 AND direction = 'incoming'",
        created["id"],
    )
    assert replies >= 1
    listed = ok(await api.get(f"/campaign-flows/{created['id']}/contacts"))["items"]
    assert {(c["telegram_username"], c["status"], c["current_node_id"]) for c in listed} == {
        ("ada_talks", "completed", "done"),
        ("bob_silent", "completed", "done"),
    }
    logged = await pool.fetch(
        "SELECT DISTINCT node_id FROM execution_logs WHERE campaign_id = $1", created["id"]
    )
    assert {r["node_id"] for r in logged} >= {"pause", "wait", "done"}


async def test_nothing_is_sent_outside_the_campaigns_active_hours(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    account = ok(
        await api.post("/telegram-accounts", json={"display_name": "Office hours", "pacing": FAST}),
        201,
    )
    tomorrow = (datetime.now(ZoneInfo("Asia/Tokyo")) + timedelta(days=1)).isoweekday()
    hours = {"days": [tomorrow], "start": "09:00", "end": "17:00"}
    created = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Tomorrow",
                "telegram_account_id": account["id"],
                "flow": BRANCHING_FLOW,
                "timezone": "Asia/Tokyo",
                "settings": {"active_hours": hours},
            },
        ),
        201,
    )
    someone = await contact(api, "office_hours")
    await add_contacts(api, created["id"], [someone["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def deferred() -> Any:
        return await pool.fetchval(
            "SELECT next_execution_at FROM executions WHERE campaign_id = $1"
            " AND next_execution_at > now() + interval '1 hour'",
            created["id"],
        )

    moment = (await eventually(deferred)).astimezone(ZoneInfo("Asia/Tokyo"))
    assert (moment.isoweekday(), moment.hour, moment.minute) == (tomorrow, 9, 0)
    assert (
        await pool.fetchval("SELECT count(*) FROM messages WHERE campaign_id = $1", created["id"])
        == 0
    )
    bad = await api.patch(
        f"/campaign-flows/{created['id']}",
        json={"settings": {"active_hours": {"days": [8], "start": "09:00"}}},
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {"settings.active_hours.days.0"}
