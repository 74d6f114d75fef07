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


async def test_a_merge_keeps_the_execution_the_other_contact_replied_in(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    """The other contact replied (its execution completed); the master's still waits. The
    replied one is further along: the master's row takes its progress and reply, the waiting one
    is cancelled as merged, and the figures follow the swap."""
    api = stack.api
    simulation = {"contacts": {"swap_other": {"reply_after_s": 0.3, "read_after_s": 0.1}}}
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={
                "display_name": "Swap",
                "simulation": simulation,
                "pacing": {"min_gap_s": 1, "jitter_s": 0},
            },
        ),
        201,
    )
    created = ok(
        await api.post(
            "/campaign-flows",
            json={"name": "Swap", "telegram_account_id": account["id"], "flow": FLOW},
        ),
        201,
    )
    master = await contact(api, "swap_master")
    other = await contact(api, "swap_other")
    await add_contacts(api, created["id"], [master["id"], other["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def statuses() -> dict[str, str]:
        rows = await pool.fetch(
            "SELECT contact_id::text, status FROM executions WHERE campaign_id = $1",
            created["id"],
        )
        return {r["contact_id"]: r["status"] for r in rows}

    async def replied_and_waiting() -> bool:
        return await statuses() == {master["id"]: "waiting", other["id"]: "completed"}

    await eventually(replied_and_waiting, timeout_s=90)
    before = await sent_to(pool, account["id"])
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
    assert await statuses() == {master["id"]: "completed", other["id"]: "cancelled"}
    reply = await pool.fetchrow(
        "SELECT m.contact_id::text, e.contact_id::text AS execution_contact FROM messages m"
        " JOIN executions e ON e.id = m.execution_id"
        " WHERE m.campaign_id = $1 AND m.direction = 'incoming'",
        created["id"],
    )
    assert reply is not None
    assert (reply["contact_id"], reply["execution_contact"]) == (master["id"], master["id"])

    async def counted() -> Any:
        stats = ok(await api.get(f"/campaign-flows/{created['id']}/statistics"))
        by_status = stats.get("executions_by_status") or {}
        settled = by_status.get("cancelled") == 1 and by_status.get("completed") == 1
        return stats if settled else None

    stats = await eventually(counted, timeout_s=60)
    assert stats["contacts_responded"] == 1
    await asyncio.sleep(3)  # past any turn the cancelled execution could have had
    assert await sent_to(pool, account["id"]) == before
