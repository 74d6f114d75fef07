"""A merge through the real services (issue 19, item 1): two contacts in a running campaign,
both already messaged, are merged; one execution remains (the other cancelled with
`merged`), the history is the master's, the simulated Telegram gets nothing more, and the
statistics equal the recount (the `stack` fixture checks `drift == []` at the end)."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.builders import FLOW, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually


async def sent_to(pool: asyncpg.Pool[Any], account_id: str) -> list[str]:
    """Every message the simulated Telegram received from this account, by peer."""
    rows = await pool.fetch(
        "SELECT peer FROM simulator_messages WHERE account_id = $1 ORDER BY peer", account_id
    )
    return [r["peer"] for r in rows]


async def test_a_merge_in_a_running_campaign_leaves_one_execution_and_messages_nobody_again(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Merge", "pacing": {"min_gap_s": 1, "jitter_s": 0}},
        ),
        201,
    )
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Merge", "telegram_account_id": account["id"], "flow": FLOW},
        ),
        201,
    )
    master = await contact(api, "merge_master", tags=["a"])
    other = await contact(api, "merge_other", tags=["b"])
    await add_contacts(api, created["id"], [master["id"], other["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def both_waiting() -> bool:
        statuses = await pool.fetch(
            "SELECT status FROM executions WHERE campaign_id = $1", created["id"]
        )
        return [r["status"] for r in statuses] == ["waiting", "waiting"]

    await eventually(both_waiting, timeout_s=90)
    before = await sent_to(pool, account["id"])
    assert len(before) == 2  # each identity got the first message once

    response = await api.post(
        "/contacts/merge",
        json={"master_id": master["id"], "other_id": other["id"], "confirm": True},
    )
    action = ok(response, 202)

    async def done() -> Any:
        found = ok(await api.get(f"/bulk-actions/{action['id']}"))
        return found if found["status"] in ("completed", "failed") else None

    finished = await eventually(done, timeout_s=60)
    assert (finished["status"], finished["success_count"]) == ("completed", 2)

    rows = await pool.fetch(
        "SELECT contact_id::text, status, error_message FROM executions WHERE campaign_id = $1",
        created["id"],
    )
    by = {r["contact_id"]: (r["status"], r["error_message"]) for r in rows}
    assert by == {master["id"]: ("waiting", None), other["id"]: ("cancelled", "merged")}
    owners = await pool.fetch(
        "SELECT DISTINCT contact_id::text FROM messages WHERE campaign_id = $1", created["id"]
    )
    assert [r["contact_id"] for r in owners] == [master["id"]]  # the history is the master's
    shown = ok(await api.get(f"/contacts/{master['id']}"))
    assert shown["tags"] == ["a", "b"]

    # The statistics count the cancellation (one waiting, one cancelled) once the stats service
    # has the batch's event ...
    async def counted() -> Any:
        stats = ok(await api.get(f"/campaign-flows/{created['id']}/statistics"))
        by_status = stats.get("executions_by_status") or {}
        return stats if by_status.get("cancelled") == 1 else None

    await eventually(counted, timeout_s=60)
    # ... and nothing more reaches Telegram because of the merge.
    await asyncio.sleep(3)
    assert await sent_to(pool, account["id"]) == before
