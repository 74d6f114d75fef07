"""A company-aware stop on reply through the real services (issue 19, item 5): two contacts of
one company in a campaign with `stop_company_on_reply: "stop"`; the simulated Telegram answers
the first one's message, which ends their flow (stop on reply) and cancels their colleague's
with company_replied before its second message; a contact of no company goes on. The `stack`
fixture ends the scenario with the statistics equal to the recount (stats verify)."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.builders import FAST, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

# A first message, then an hour before the second: the colleague is waiting when the reply
# comes.
FLOW: dict[str, Any] = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}!"},
        {"id": "pause", "type": "delay", "seconds": 3600},
        {"id": "again", "type": "send_message", "text": "Still there?"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "pause"},
        {"from": "pause", "to": "again"},
        {"from": "again", "to": "end"},
    ],
}


async def test_a_reply_stops_the_other_contacts_of_the_company(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    replies = {"read_after_s": 0, "reply_after_s": 1, "reply_text": "Interesting, tell me more"}
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={
                "display_name": "Co",
                "pacing": FAST,
                "simulation": {"contacts": {"co_replier": replies}},
            },
        ),
        201,
    )["id"]
    acme = ok(await api.post("/companies", json={"name": "Acme"}), 201)["id"]
    replier = (await contact(api, "co_replier", company_id=acme))["id"]
    colleague = (await contact(api, "co_colleague", company_id=acme))["id"]
    outsider = (await contact(api, "co_outsider"))["id"]
    campaign = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Company",
                "telegram_account_id": account,
                "flow": FLOW,
                "settings": {"response_handling": {"stop_company_on_reply": "stop"}},
            },
        ),
        201,
    )["id"]
    await add_contacts(api, campaign, [replier, colleague, outsider])
    ok(await api.post(f"/campaign-flows/{campaign}/launch"))

    async def state(person: str) -> tuple[str, str]:
        row = await pool.fetchrow(
            "SELECT status, coalesce(error_message, '') AS reason FROM executions"
            " WHERE campaign_id = $1 AND contact_id = $2",
            campaign,
            person,
        )
        assert row is not None
        return row["status"], row["reason"]

    async def stopped() -> bool:
        return (await state(colleague))[0] == "cancelled"

    await eventually(stopped, timeout_s=40)
    assert await state(colleague) == ("cancelled", "company_replied")
    assert (await state(replier))[0] == "completed"  # stop_on_reply (the default)
    assert (await state(outsider))[0] in {"pending", "waiting"}  # not of the company: goes on
    logged = await pool.fetch(
        "SELECT message FROM execution_logs WHERE event = 'company_replied' AND contact_id = $1",
        colleague,
    )
    assert [r["message"] for r in logged] == ["cancelled"]
    # The colleague had at most their first message; the second (an hour on) is never sent.
    sent = await pool.fetchval(
        "SELECT count(*) FROM simulator_messages WHERE peer = 'co_colleague'"
    )
    assert sent <= 1

    async def counted() -> Any:
        figures = ok(await api.get(f"/campaign-flows/{campaign}/statistics"))
        return figures if figures["executions_by_status"].get("cancelled") == 1 else None

    await eventually(counted, timeout_s=20)
