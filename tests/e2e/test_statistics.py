"""Statistics through the real services: an A/B campaign with replies, reads, contact faults and
a removed contact ends with figures that are exactly what happened, equal to a recount, served
by the API, compared across campaigns, checked by `dripline stats verify` and repaired by
`dripline stats verify --repair`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg

from dripline.processes import settings_env
from tests.builders import add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually

SPLIT_FLOW = {
    "start": "split",
    "nodes": [
        {"id": "split", "type": "ab_split",
         "variants": [{"name": "A", "weight": 50}, {"name": "B", "weight": 50}]},
        {"id": "hello_a", "type": "send_message", "text": "Hello {first_name} (A)"},
        {"id": "hello_b", "type": "send_message", "text": "Hey {first_name} (B)"},
        {"id": "wait", "type": "wait_for_reply", "timeout_seconds": 2},
        {"id": "done", "type": "end"},
    ],
    "edges": [
        {"from": "split", "to": "hello_a", "when": "A"},
        {"from": "split", "to": "hello_b", "when": "B"},
        {"from": "hello_a", "to": "wait"},
        {"from": "hello_b", "to": "wait"},
        {"from": "wait", "to": "done", "when": "replied"},
        {"from": "wait", "to": "done", "when": "timed_out"},
    ],
}  # fmt: skip
REPLIERS = [f"talker{i}" for i in range(4)]
READERS = [f"reader{i}" for i in range(6)]
SIMULATION = {
    "contacts": {
        **{name: {"reply_after_s": 0.3, "read_after_s": 0.1} for name in REPLIERS},
        **{name: {"read_after_s": 0.1} for name in READERS},
        "shyperson": {"privacy_restricted": True},
        "ghostperson": {"deleted": True},
    }
}
FAST = {"min_gap_s": 0, "jitter_s": 0, "flood_margin_s": 0}


async def test_statistics_are_exactly_what_happened_and_equal_a_recount(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Stats", "simulation": SIMULATION, "pacing": FAST,
                  "warm": True},
        ),
        201,
    )  # fmt: skip
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "A/B", "telegram_account_id": account["id"], "flow": SPLIT_FLOW,
                  "settings": {"response_handling": {"stop_on_reply": False}}},
        ),
        201,
    )  # fmt: skip
    campaign_id = created["id"]
    people = {
        name: (await contact(api, name))["id"]
        for name in [*REPLIERS, *READERS, "shyperson", "ghostperson"]
    }
    await add_contacts(api, campaign_id, list(people.values()))
    ok(await api.post(f"/campaign-flows/{campaign_id}/launch"))

    async def completed() -> bool:
        return bool(ok(await api.get(f"/campaign-flows/{campaign_id}"))["status"] == "completed")

    await eventually(completed, timeout_s=60)
    # One reader leaves the campaign afterwards: its progress leaves the figures.
    removed = ok(
        await api.request(
            "DELETE", f"/campaign-flows/{campaign_id}/contacts",
            json={"contact_ids": [people["reader5"]]},
        )
    )  # fmt: skip
    assert removed["removed"] == 1

    expected = {
        "total_contacts": 11,
        "contacts_started": 11,
        "contacts_completed": 9,
        "contacts_failed": 2,
        "contacts_active": 0,
        "contacts_responded": 4,
        "messages_sent": 9,
        "messages_failed": 2,
        "messages_delivered": 9,
        "messages_not_sent": 0,
        "completion_rate": round(9 / 11 * 100, 2),
        "response_rate": round(4 / 9 * 100, 2),
        "delivery_rate": 100.0,
        "executions_by_status": {"completed": 9, "failed": 2},
    }

    async def figures() -> dict[str, Any] | None:
        served = ok(await api.get(f"/campaign-flows/{campaign_id}/statistics"))
        shown = {name: served[name] for name in expected}
        return served if shown == expected else None

    served = await eventually(figures, timeout_s=30)
    assert served["materialized"] is True
    assert served["lag_seconds"] is not None
    assert served["lag_seconds"] >= 0
    variants = served["variants"]
    assert set(variants) == {"A", "B"}
    assert sum(v["contacts"] for v in variants.values()) == 11
    assert sum(v["contacts_responded"] for v in variants.values()) == 4
    assert sum(v["messages_sent"] for v in variants.values()) == 9
    # The variant a contact got is the one its message says.
    for name, figures_ in variants.items():
        bodies = await pool.fetchval(
            "SELECT count(*) FROM messages m JOIN executions e ON e.id = m.execution_id"
            " WHERE m.campaign_id = $1 AND e.deleted_at IS NULL AND m.status <> 'failed'"
            " AND m.direction = 'outgoing' AND m.body LIKE $2",
            uuid.UUID(campaign_id),
            f"% ({name})",
        )
        assert figures_["messages_sent"] == bodies

    # The served row equals the spec's database function, figure by figure.
    recount = await pool.fetchrow("SELECT * FROM get_campaign_statistics($1)", campaign_id)
    assert recount is not None
    for figure, value in recount.items():
        name = {"by_status": "executions_by_status"}.get(figure, figure)
        expected_value = str(value) if figure == "campaign_id" else value
        if "rate" in figure:
            expected_value = float(value)
        assert served[name] == expected_value, figure
    fresh = ok(await api.get(f"/campaign-flows/{campaign_id}/statistics", params={"refresh": True}))
    assert fresh["materialized"] is False
    assert {n: fresh[n] for n in expected} == expected

    # Comparative statistics: in the order asked, with sums; what the caller cannot see is named.
    other = ok(await api.post("/campaign-flows", json={"name": "Empty"}), 201)
    stranger = uuid.uuid4()
    compared = ok(
        await api.post(
            "/statistics/compare",
            json={"campaign_ids": [other["id"], campaign_id, str(stranger)]},
        )
    )
    assert [c["campaign_id"] for c in compared["campaigns"]] == [other["id"], campaign_id]
    assert compared["not_found"] == [str(stranger)]
    assert compared["campaigns"][0]["total_contacts"] == 0
    assert compared["campaigns"][1]["messages_sent"] == 9
    assert compared["totals"]["total_contacts"] == 11
    assert compared["totals"]["response_rate"] == expected["response_rate"]
    too_many = await api.post(
        "/statistics/compare", json={"campaign_ids": [str(uuid.uuid4()) for _ in range(101)]}
    )
    assert too_many.status_code == 422

    # `dripline stats verify` agrees, and catches a figure that drifted.
    env = {**os.environ, **settings_env(stack.settings)}
    verify = [sys.executable, "-m", "dripline", "stats", "verify", "--settle", "1"]
    clean = await _run(verify, env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 campaign(s) differ" in clean.stdout
    await pool.execute(
        "UPDATE campaign_stats SET messages_sent = messages_sent + 1 WHERE campaign_id = $1",
        campaign_id,
    )
    drifted = await _run(verify, env)
    assert drifted.returncode == 1
    assert f"campaign {campaign_id}: messages_sent is 10 in campaign_stats, 9 when recounted" in (
        drifted.stdout
    )
    # `--repair` replaces what drifted by the recount, says what it fixed, and exits 0; the
    # shares it rebuilds are what later refreshes count against (a variant's stored figures and
    # an execution's share are gone too here).
    await pool.execute("DELETE FROM campaign_variant_stats WHERE campaign_id = $1", campaign_id)
    await pool.execute(
        "DELETE FROM execution_figures WHERE execution_id = (SELECT min(id::text)::uuid"
        " FROM executions WHERE campaign_id = $1)",
        campaign_id,
    )
    repaired = await _run([*verify, "--repair"], env)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"repaired campaign {campaign_id}: messages_sent 10 → 9" in repaired.stdout
    assert f"repaired campaign {campaign_id}: variants {{}} → " in repaired.stdout
    assert "1 campaign(s) repaired" in repaired.stdout
    clean = await _run(verify, env)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    shares = await pool.fetchval(
        "SELECT count(*) FROM execution_figures WHERE campaign_id = $1", campaign_id
    )
    assert shares == await pool.fetchval(
        "SELECT count(*) FROM executions WHERE campaign_id = $1", campaign_id
    )


async def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )


async def test_statistics_follow_a_stop_and_a_bulk_delete_of_contacts(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    """Set-based changes (a stop cancelling executions, a bulk action deleting contacts from
    every campaign) reach the figures as exactly as the sender's steps."""
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Slow", "pacing": {"min_gap_s": 3600, "jitter_s": 0},
                  "warm": True},
        ),
        201,
    )  # fmt: skip
    flow = {
        "start": "hello",
        "nodes": [{"id": "hello", "type": "send_message", "text": "Hi"},
                  {"id": "end", "type": "end"}],
        "edges": [{"from": "hello", "to": "end"}],
    }  # fmt: skip
    ids = [(await contact(api, f"slow{i}"))["id"] for i in range(6)]
    first = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Stopped", "telegram_account_id": account["id"], "flow": flow},
        ),
        201,
    )
    second = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Kept", "telegram_account_id": account["id"], "flow": flow},
        ),
        201,
    )
    await add_contacts(api, first["id"], ids)
    await add_contacts(api, second["id"], ids)
    ok(await api.post(f"/campaign-flows/{first['id']}/launch"))
    ok(await api.post(f"/campaign-flows/{first['id']}/stop"))

    async def cancelled() -> bool:
        served = ok(await api.get(f"/campaign-flows/{first['id']}/statistics"))
        return bool(
            served["executions_by_status"].get("cancelled", 0) + served["contacts_completed"] == 6
            and served["contacts_active"] == 0
        )

    await eventually(cancelled, timeout_s=30)
    ok(
        await api.post(
            "/bulk-actions",
            json={"name": "Forget two", "action": "delete_contacts", "contact_ids": ids[:2],
                  "mode": "all_at_once"},
        ),
        201,
    )  # fmt: skip

    async def shrunk() -> bool:
        kept = ok(await api.get(f"/campaign-flows/{second['id']}/statistics"))
        stopped = ok(await api.get(f"/campaign-flows/{first['id']}/statistics"))
        return bool(kept["total_contacts"] == 4 and stopped["total_contacts"] == 4
                    and kept["materialized"] and stopped["materialized"])  # fmt: skip

    await eventually(shrunk, timeout_s=30)
