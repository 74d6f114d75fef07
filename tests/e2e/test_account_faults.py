"""Every account and contact fault of the simulator, through the real services: each ends in the
right state, and no message is lost or sent twice."""

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
TWO_SENDS = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi"},
        {"id": "again", "type": "send_message", "text": "Hi again"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "hello", "to": "again"}, {"from": "again", "to": "end"}],
}
FAST = {"min_gap_s": 0, "jitter_s": 0, "flood_margin_s": 0}


async def run(
    api: httpx.AsyncClient,
    name: str,
    simulation: dict[str, Any],
    people: list[str],
    flow: dict[str, Any] = ONE_SEND,
    pacing: dict[str, Any] = FAST,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An account with this simulated behaviour and a launched campaign to these people."""
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": name, "simulation": simulation, "pacing": pacing, "warm": True},
        ),
        201,
    )
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": name, "telegram_account_id": account["id"], "flow": flow},
        ),
        201,
    )
    ids = [(await contact(api, username))["id"] for username in people]
    await add_contacts(api, created["id"], ids)
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))
    return account, created


async def executions(pool: asyncpg.Pool[Any], campaign_id: str) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch(
        "SELECT c.telegram_username, e.status, e.error_message, e.next_execution_at"
        " FROM executions e JOIN contacts c ON c.id = e.contact_id WHERE e.campaign_id = $1",
        campaign_id,
    )
    return {r["telegram_username"]: r for r in rows}


async def nothing_sent_twice(pool: asyncpg.Pool[Any], account_id: str) -> int:
    """Our sent messages and the simulated Telegram's agree one to one; returns the count."""
    ours = await pool.fetchval(
        "SELECT count(*) FROM messages WHERE telegram_account_id = $1 AND direction = 'outgoing'"
        " AND status IN ('sent', 'delivered', 'read')",
        account_id,
    )
    theirs = await pool.fetchval(
        "SELECT count(*) FROM simulator_messages WHERE account_id = $1", account_id
    )
    assert ours == theirs
    return int(ours)


async def health(api: httpx.AsyncClient, account_id: str) -> str:
    return str(ok(await api.get(f"/telegram-accounts/{account_id}"))["health_status"])


async def test_contacts_that_cannot_be_messaged_fail_with_the_reason(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    simulation = {
        "contacts": {"shy_one": {"privacy_restricted": True}, "gone_one": {"deleted": True}}
    }
    account, campaign = await run(
        stack.api, "Faulty contacts", simulation, ["shy_one", "gone_one", "fine_one"]
    )

    async def done() -> Any:
        status = ok(await stack.api.get(f"/campaign-flows/{campaign['id']}"))["status"]
        return status == "completed"

    await eventually(done)
    rows = await executions(pool, campaign["id"])
    assert rows["fine_one"]["status"] == "completed"
    assert rows["shy_one"]["status"] == "failed"
    assert "Privacy" in rows["shy_one"]["error_message"]
    assert rows["gone_one"]["status"] == "failed"
    assert "deleted" in rows["gone_one"]["error_message"]
    assert await nothing_sent_twice(pool, account["id"]) == 1
    failed = await pool.fetchval(
        "SELECT count(*) FROM messages WHERE telegram_account_id = $1 AND status = 'failed'",
        account["id"],
    )
    assert failed == 2
    assert await health(stack.api, account["id"]) == "active"  # the account is not to blame


async def test_a_flood_wait_cools_the_account_down_and_delays_without_failing(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    simulation = {"burst": {"sends": 2, "window_s": 1, "flood_wait_s": 1}}
    people = ["fl_a1", "fl_b2", "fl_c3", "fl_d4", "fl_e5"]
    account, campaign = await run(stack.api, "Flood", simulation, people)

    async def everyone_reached() -> bool:
        rows = await executions(pool, campaign["id"])
        return all(r["status"] == "completed" for r in rows.values())

    await eventually(everyone_reached, timeout_s=60)
    assert await nothing_sent_twice(pool, account["id"]) == 5
    cooldowns = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'account.health_changed'"
        " AND convert_from(value, 'UTF8')::jsonb->'payload'->>'status' = 'cooldown'"
    )
    assert cooldowns >= 1


async def test_peer_flood_limits_the_account_and_the_rest_wait(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    people = ["pf_a1", "pf_b2", "pf_c3"]
    account, campaign = await run(stack.api, "Peer flood", {"peer_flood_after": 2}, people)

    async def limited() -> bool:
        return await health(stack.api, account["id"]) == "limited"

    await eventually(limited)
    rows = await executions(pool, campaign["id"])
    assert sorted(r["status"] for r in rows.values()) == ["completed", "completed", "pending"]
    waiting = next(r for r in rows.values() if r["status"] == "pending")
    assert waiting["error_message"] is None  # delayed, never failed
    assert await nothing_sent_twice(pool, account["id"]) == 2


async def test_the_daily_budget_of_new_peers_delays_the_rest_to_tomorrow(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    people = ["bd_a1", "bd_b2", "bd_c3"]
    account, campaign = await run(
        stack.api, "Budget", {}, people, pacing={**FAST, "daily_new_peers": 2}
    )

    async def two_sent() -> bool:
        rows = await executions(pool, campaign["id"])
        return sorted(r["status"] for r in rows.values()) == ["completed", "completed", "pending"]

    await eventually(two_sent)
    rows = await executions(pool, campaign["id"])
    waiting = next(r for r in rows.values() if r["status"] == "pending")
    assert waiting["next_execution_at"].hour == 0  # tomorrow, at the start of the day
    assert await health(stack.api, account["id"]) == "active"
    assert await nothing_sent_twice(pool, account["id"]) == 2


async def test_a_revoked_session_or_a_ban_fails_the_campaign_with_the_reason(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    revoked, lost = await run(stack.api, "Revoked", {"revoked_after": 1}, ["rv_a1"], TWO_SENDS)
    banned, gone = await run(stack.api, "Banned", {"banned_after": 1}, ["bn_a1"], TWO_SENDS)

    async def failed(campaign_id: str) -> Any:
        campaign = ok(await stack.api.get(f"/campaign-flows/{campaign_id}"))
        return campaign if campaign["status"] == "failed" else None

    first = await eventually(lambda: failed(lost["id"]))
    assert first["display_status"] == "Failed"
    assert "lost its login" in first["failure_reason"]
    second = await eventually(lambda: failed(gone["id"]))
    assert "banned" in second["failure_reason"]
    assert await health(stack.api, revoked["id"]) == "auth_lost"
    assert await health(stack.api, banned["id"]) == "banned"
    for campaign in (lost, gone):
        # Interrupted where it stood, not finished: a relaunch continues it (issue 16).
        rows = await executions(pool, campaign["id"])
        assert [r["status"] for r in rows.values()] == ["paused"]
        assert "Telegram account" in next(iter(rows.values()))["error_message"]
    # The first send of each went out; the second never did, and nothing went twice.
    assert await nothing_sent_twice(pool, revoked["id"]) == 1
    assert await nothing_sent_twice(pool, banned["id"]) == 1


async def test_the_health_check_finds_a_dead_account_before_any_launch(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    account = ok(
        await stack.api.post(
            "/telegram-accounts",
            json={"display_name": "Dead on arrival", "simulation": {"banned": True}},
        ),
        201,
    )

    async def banned() -> bool:
        return await health(stack.api, account["id"]) == "banned"

    await eventually(banned)
    created = ok(
        await stack.api.post(
            "/campaign-flows",
            json={"name": "Never", "telegram_account_id": account["id"], "flow": ONE_SEND},
        ),
        201,
    )
    someone = await contact(stack.api, "doa_a1")
    await add_contacts(stack.api, created["id"], [someone["id"]])
    refused = await stack.api.post(f"/campaign-flows/{created['id']}/launch")
    assert refused.status_code == 409
    assert [e["code"] for e in refused.json()["errors"]] == ["account_unavailable"]
    assert await nothing_sent_twice(pool, account["id"]) == 0


async def test_a_health_check_on_demand_finds_a_revoked_session(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    account = ok(await stack.api.post("/telegram-accounts", json={"display_name": "Checked"}), 201)
    checked = ok(await stack.api.post(f"/telegram-accounts/{account['id']}/health-check"))
    assert checked["health_status"] == "warming"
    assert checked["last_checked_at"] is not None
    # The session is revoked on Telegram's side; the next check finds out.
    await stack.api.patch(
        f"/telegram-accounts/{account['id']}", json={"simulation": {"revoked": True}}
    )
    found = ok(await stack.api.post(f"/telegram-accounts/{account['id']}/health-check"))
    assert found["health_status"] == "auth_lost"
    assert "SessionRevokedError" in found["health_detail"]
    events = await pool.fetch(
        "SELECT convert_from(value, 'UTF8')::jsonb->'payload'->>'status' AS status FROM outbox"
        " WHERE headers->>'message-type' = 'account.health_changed' AND key = convert_to($1,"
        " 'UTF8') ORDER BY id",
        account["id"],
    )
    assert [e["status"] for e in events] == ["auth_lost"]  # every transition is an event


async def test_a_new_account_warms_up_with_a_small_daily_budget(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    account = ok(
        await stack.api.post(
            "/telegram-accounts",
            json={
                "display_name": "Brand new",
                "pacing": {"min_gap_s": 0, "jitter_s": 0, "warmup_start": 3},
            },
        ),
        201,
    )
    assert account["health_status"] == "warming"
    created = ok(
        await stack.api.post(
            "/campaign-flows",
            json={"name": "Warm-up", "telegram_account_id": account["id"], "flow": ONE_SEND},
        ),
        201,
    )
    ids = [(await contact(stack.api, f"warm_{i}x"))["id"] for i in range(5)]
    await add_contacts(stack.api, created["id"], ids)
    ok(await stack.api.post(f"/campaign-flows/{created['id']}/launch"))

    async def first_day_spent() -> bool:
        rows = await executions(pool, created["id"])
        return sorted(r["status"] for r in rows.values()) == ["completed"] * 3 + ["pending"] * 2

    await eventually(first_day_spent)
    assert await nothing_sent_twice(pool, account["id"]) == 3
    rows = await executions(pool, created["id"])
    assert all(r["next_execution_at"].hour == 0 for r in rows.values() if r["status"] == "pending")
    assert await health(stack.api, account["id"]) == "warming"


# A campaign failed by a ban is launched again once another account is chosen (issue 16): its
# interrupted executions continue where they stopped, and every contact is messaged exactly
# once at each step (the simulated Telegram, across both accounts, says so).
RELAUNCHED = ["rl_a1", "rl_b2", "rl_c3", "rl_d4"]


async def test_a_campaign_failed_by_a_ban_relaunches_on_another_account_without_resending(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    # The account is banned at its fourth send: three messages went out, five did not.
    banned, campaign = await run(stack.api, "Relaunch", {"banned_after": 3}, RELAUNCHED, TWO_SENDS)
    url = f"/campaign-flows/{campaign['id']}"

    async def failed() -> Any:
        found = ok(await stack.api.get(url))
        return found if found["status"] == "failed" else None

    failed_campaign = await eventually(failed, timeout_s=60)
    assert "banned" in failed_campaign["failure_reason"]
    # The relaunch is refused while its account is banned, with the requirement named.
    refused = await stack.api.post(f"{url}/launch")
    assert refused.status_code == 409, refused.text
    assert [e["code"] for e in refused.json()["errors"]] == ["account_unavailable"]

    seen: list[dict[str, tuple[str, str | None]]] = []

    async def interrupted() -> bool:
        rows = await executions(pool, campaign["id"])
        seen.append({name: (r["status"], r["error_message"]) for name, r in rows.items()})
        return all(r["status"] in ("paused", "completed") for r in rows.values())

    try:
        await eventually(interrupted, timeout_s=60)
    except AssertionError as late:
        raise AssertionError(f"executions not interrupted: {seen[-1]}") from late
    rows = await executions(pool, campaign["id"])
    assert "failed" not in {r["status"] for r in rows.values()}

    # While failed, its flow may be edited (as in a paused campaign) and its account changed.
    edited = ok(await stack.api.patch(url, json={"flow": TWO_SENDS, "description": "fixed"}))
    assert edited["status"] == "failed"
    spare = ok(
        await stack.api.post(
            "/telegram-accounts",
            json={"display_name": "Spare", "simulation": {}, "pacing": FAST, "warm": True},
        ),
        201,
    )
    changed = ok(await stack.api.patch(url, json={"telegram_account_id": spare["id"]}))
    assert changed["unmet_requirements"] == []
    relaunched = ok(await stack.api.post(f"{url}/launch"))
    assert relaunched["status"] in ("active", "completed")
    assert relaunched["failure_reason"] is None

    async def completed() -> bool:
        rows = await executions(pool, campaign["id"])
        return all(r["status"] == "completed" for r in rows.values())

    await eventually(completed, timeout_s=90)
    # The simulated Telegram, across both accounts: each contact got each step exactly once.
    sent = await pool.fetch(
        "SELECT peer, body, count(*) AS times FROM simulator_messages"
        " WHERE account_id = ANY($1::uuid[]) GROUP BY peer, body",
        [banned["id"], spare["id"]],
    )
    by_step = {(r["peer"].lstrip("@"), r["body"]): r["times"] for r in sent}
    expected = {(person, text): 1 for person in RELAUNCHED for text in ("Hi", "Hi again")}
    assert by_step == expected
    on_banned = sum(times for (_, _), times in by_step.items()) - await pool.fetchval(
        "SELECT count(*) FROM simulator_messages WHERE account_id = $1", spare["id"]
    )
    assert on_banned == 3  # what went out before the ban stayed sent, and was not sent again
