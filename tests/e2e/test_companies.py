"""Companies and opportunities through all four services (issue 19, items 2 and 3): a drip
"add to company" released batch by batch as the clock moves, then a "create opportunities"
over the company's contacts, each with per-item results and progress on dripline.bulk.events,
and every stage change on dripline.opportunity.events."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shared.file_clock import FileClock
from shared.messaging.topics import Topic
from tests.builders import ok
from tests.e2e.conftest import Stack
from tests.support import eventually, find_on_topic, topic

CLOCK = Path(tempfile.mkdtemp(prefix="dripline-clock-")) / "now"


async def events(stack: Stack, logical: str, key: str, value: str, count: int) -> list[Any]:
    """The topic's events whose payload has `key` = `value`, one per message id, once there
    are `count` of them."""

    def ours(record: Any) -> bool:
        return bool(json.loads(record.value)["payload"].get(key) == value)

    async def enough() -> Any:
        found = await find_on_topic(
            stack.settings.bootstrap_servers, topic(stack.settings, logical), ours
        )
        unique = {json.loads(r.value)["message_id"]: json.loads(r.value) for r in found}
        return list(unique.values()) if len(unique) >= count else None

    return await eventually(enough, timeout_s=40)  # type: ignore[no-any-return]


async def items(stack: Stack, action_id: str) -> dict[str, tuple[str, str, int]]:
    page = ok(await stack.api.get(f"/bulk-actions/{action_id}/items", params={"limit": 1000}))
    return {i["contact_id"]: (i["status"], i["code"], i["batch_number"]) for i in page["items"]}


@pytest.mark.settings(clock_file=CLOCK)
async def test_drip_add_to_company_then_create_opportunities(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    FileClock.set(CLOCK, start)
    await pool.execute(
        "INSERT INTO contacts (owner_user_id, telegram_username, first_name, tags)"
        " SELECT $1, 'lead' || n || 'xx', 'Lead ' || n, ARRAY['expo'] FROM generate_series(1, 6) n",
        stack.user_id,
    )
    acme = ok(await stack.api.post("/companies", json={"name": "Acme", "domain": "acme.com"}), 201)
    joined = ok(
        await stack.api.post(
            "/bulk-actions",
            json={"name": "Expo leads to Acme", "action": "add_to_company",
                  "params": {"company_id": acme["id"]}, "filter": {"tags": ["expo"]},
                  "mode": "drip", "drip": {"batch_size": 2, "every": 10, "unit": "minutes"}},
        ),
        201,
    )  # fmt: skip
    for batch in range(1, 4):

        async def released(expected: int = batch) -> Any:
            found = ok(await stack.api.get(f"/bulk-actions/{joined['id']}"))
            return found if found["batches"] >= expected else None

        found = await eventually(released)
        assert found["processed"] == 2 * batch  # one batch per interval, never ahead of it
        FileClock.set(CLOCK, start + timedelta(minutes=10 * batch))
    done = ok(await stack.api.get(f"/bulk-actions/{joined['id']}"))
    assert (done["status"], done["success_count"]) == ("completed", 6)
    outcomes = await items(stack, joined["id"])
    assert sorted(outcomes.values()) == sorted(
        ("succeeded", "added_to_company", n) for n in (1, 1, 2, 2, 3, 3)
    )
    assert ok(await stack.api.get(f"/companies/{acme['id']}"))["contacts"] == 6
    progress = await events(stack, Topic.BULK_EVENTS, "action_id", joined["id"], 4)
    assert sorted(e["type"] for e in progress) == [
        "bulk_action.completed",
        *["bulk_action.progressed"] * 3,
    ]

    sales = ok(
        await stack.api.post(
            "/pipelines", json={"name": "Sales", "stages": [{"name": "Lead"}, {"name": "Demo"}]}
        ),
        201,
    )
    lead, demo = (s["id"] for s in sales["stages"])
    created = ok(
        await stack.api.post(
            "/bulk-actions",
            json={"name": "Acme opportunities", "action": "upsert_opportunities",
                  "params": {"pipeline_id": sales["id"], "stage_id": lead, "value": "250"},
                  "filter": {"company_id": acme["id"]}},
        ),
        201,
    )  # fmt: skip

    async def completed() -> Any:
        found = ok(await stack.api.get(f"/bulk-actions/{created['id']}"))
        return found if found["status"] == "completed" else None

    assert (await eventually(completed))["success_count"] == 6
    assert {o[:2] for o in (await items(stack, created["id"])).values()} == {
        ("succeeded", "created")
    }
    listed = ok(await stack.api.get(f"/pipelines/{sales['id']}/opportunities"))["items"]
    assert sorted(o["name"] for o in listed) == [f"Lead {n}" for n in range(1, 7)]
    assert {(o["stage_id"], o["value"], o["status"]) for o in listed} == {(lead, "250.00", "open")}
    first = listed[0]
    ok(await stack.api.patch(f"/opportunities/{first['id']}", json={"stage_id": demo}))
    changes = await events(stack, Topic.OPPORTUNITY_EVENTS, "pipeline_id", sales["id"], 7)
    assert sorted(
        (e["payload"]["source"], e["payload"]["previous_stage_id"] or "", e["payload"]["stage_id"])
        for e in changes
    ) == sorted([("bulk_action", "", lead)] * 6 + [("api", lead, demo)])
    assert {e["payload"]["bulk_action_id"] for e in changes} == {created["id"], None}
