"""The fleet circuit breaker through the live stack (issue 14, item 4): two of a user's three
simulated accounts meet PEER_FLOOD and are limited, so the user's sending pauses by itself; a
campaign launched meanwhile from the healthy account shows why and sends nothing; once the
limited accounts are taken out of the fleet the breaker resets and that send goes out with no
manual step. The pause and the resume are in the activity feed of a campaign that was
sending."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx

from tests.builders import add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

ONE_SEND = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "hello", "to": "end"}],
}
FAST = {"min_gap_s": 0, "jitter_s": 0, "flood_margin_s": 0}


async def campaign_from(
    api: httpx.AsyncClient, name: str, simulation: dict[str, Any], people: list[str]
) -> tuple[str, str]:
    """An account with this simulated behaviour and a campaign to these people: (account id,
    campaign id), not launched."""
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": name, "simulation": simulation, "pacing": FAST, "warm": True},
        ),
        201,
    )
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": name, "telegram_account_id": account["id"], "flow": ONE_SEND},
        ),
        201,
    )
    ids = [(await contact(api, username))["id"] for username in people]
    await add_contacts(api, created["id"], ids)
    return account["id"], created["id"]


async def test_limited_accounts_pause_the_fleet_and_sending_resumes_after_the_reset(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    first = await campaign_from(api, "Flood 1", {"peer_flood_after": 1}, ["fb_a1", "fb_a2"])
    second = await campaign_from(api, "Flood 2", {"peer_flood_after": 1}, ["fb_b1", "fb_b2"])
    healthy, waiting = await campaign_from(api, "Healthy", {}, ["fb_c1"])
    for _, campaign in (first, second):
        ok(await api.post(f"/campaign-flows/{campaign}/launch"))

    async def paused_reason(campaign: str) -> Any:
        return ok(await api.get(f"/campaign-flows/{campaign}"))["sending_paused_reason"]

    # Each account's second send meets PEER_FLOOD: 2 of 3 sending accounts limited (67%).
    reason = await eventually(lambda: paused_reason(first[1]), timeout_s=60)
    assert reason == (
        "fleet breaker: 2 of 3 sending accounts are limited, frozen or in a flood cooldown"
        " within the last hour (pausing at 60%)"
    )
    ok(await api.post(f"/campaign-flows/{waiting}/launch"))
    assert await paused_reason(waiting) == reason

    # The breaker is evaluated again by the sweep after the launch; nothing went out meanwhile.
    launched = await pool.fetchval("SELECT now()")

    async def evaluated_since_launch() -> bool:
        return bool(
            await pool.fetchval(
                "SELECT evaluated_at > $1 AND tripped_at IS NOT NULL FROM fleet_breakers"
                " WHERE user_id = $2",
                launched,
                stack.user_id,
            )
        )

    await eventually(evaluated_since_launch)
    sent = "SELECT count(*) FROM simulator_messages WHERE account_id = $1"
    assert await pool.fetchval(sent, healthy) == 0

    # The limited accounts leave the fleet: 0 of 1, below min_accounts. The sweep resets the
    # breaker and the waiting send goes out by itself.
    for account, _ in (first, second):
        gone = await api.delete(f"/telegram-accounts/{account}")
        assert gone.status_code == 204

    async def completed() -> bool:
        shown = ok(await api.get(f"/campaign-flows/{waiting}"))
        return bool(shown["status"] == "completed")

    await eventually(completed, timeout_s=60)
    assert await paused_reason(waiting) is None
    assert await pool.fetchval(sent, healthy) == 1
    events = await pool.fetch(
        "SELECT headers->>'message-type' AS type FROM outbox"
        " WHERE topic LIKE '%dripline.organization.events' ORDER BY id"
    )
    assert [e["type"] for e in events] == [
        "organization.sending_paused",
        "organization.sending_resumed",
    ]

    # Both are news in the feed of a campaign that was sending from the context (the stats
    # service keeps it).
    async def feed_says_both() -> bool:
        feed = ok(await api.get(f"/campaign-flows/{first[1]}/activities"))
        summaries = [item["summary"] for item in feed["items"]]
        return any(
            s.startswith("Sending paused by the fleet breaker: 2 of 3") for s in summaries
        ) and any(s.startswith("Sending resumed: the fleet breaker reset") for s in summaries)

    await eventually(feed_says_both)
