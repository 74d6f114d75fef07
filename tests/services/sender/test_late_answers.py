"""Answers that arrive late: a stalled sender's answer to a send that another sender has since
reconciled and moved on from, and sends re-claimed after a crash (issue 13, items 1 and 2).

An answer moves only the execution, node and send count its send record belongs to, and only
when it changes that record; re-sending a queued record reconciles it at once, without a second
charge to the account's budget of new peers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.sender.due import Steps
from services.sender.gateway import Account, AccountDead, ContactPermanent, RetryAfter, Transient
from shared.domain.clock import FixedClock
from shared.domain.pacing import Pacing
from shared.messaging.consumer import BatchConsumer, HandlerContext
from shared.messaging.contracts import MessageType, decode
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic
from tests.builders import TWO_SENDS
from tests.services.builders import create_service_for, due_record

NOW = datetime.now(UTC).replace(microsecond=0)
FIRST_LEASE = NOW + timedelta(seconds=60)
SECOND_LEASE = NOW + timedelta(seconds=180)
LATER = NOW + timedelta(seconds=120)  # the first lease has run out


async def seed(
    pool: asyncpg.Pool[Any], contacts: int, pacing: dict[str, Any], lease: datetime
) -> tuple[UUID, UUID, list[UUID]]:
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('l@example.com') RETURNING id")
    account: UUID = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        pacing,
    )
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow)"
        " VALUES ($1, 'c', 'active', $2, $3) RETURNING id",
        user,
        account,
        TWO_SENDS,
    )
    executions = []
    for i in range(contacts):
        contact = await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
            " VALUES ($1, $2, 'Cy') RETURNING id",
            user,
            f"late{i}",
        )
        executions.append(
            await pool.fetchval(
                "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at,"
                " lease_until) VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
                campaign,
                contact,
                NOW,
                lease,
            )
        )
    return account, campaign, executions


async def stall_after_commit(
    pool: asyncpg.Pool[Any], service: Any, records: list[Any]
) -> list[Any]:
    """A sender steps these due events and commits its send records, then stalls before its
    network calls: the work after the commit is returned, not run."""
    handler = service.handlers[Topic.EXECUTIONS_DUE][MessageType.EXECUTION_DUE.value]
    decoded = [decode(Topic.EXECUTIONS_DUE, record.value) for record in records]
    async with pool.acquire() as connection, connection.transaction():
        context = HandlerContext(connection, Outbox(), FixedClock(NOW), "sender")
        await handler(context, decoded)
    return list(context.after_commit)


def consumer_at(pool: asyncpg.Pool[Any], service: Any, now: datetime) -> BatchConsumer:
    return BatchConsumer(
        name="sender",
        topic=Topic.EXECUTIONS_DUE,
        handlers=service.handlers[Topic.EXECUTIONS_DUE],
        pool=pool,
        clock=FixedClock(now),
    )


async def events_of(pool: asyncpg.Pool[Any], type_: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT value FROM outbox WHERE headers->>'message-type' = $1 ORDER BY id", type_
    )
    return [json.loads(bytes(row["value"]))["payload"] for row in rows]


async def test_a_late_answer_does_not_move_an_execution_another_sender_moved_on(
    pool: asyncpg.Pool[Any],
) -> None:
    account, campaign, executions = await seed(
        pool, 3, {"min_gap_s": 0, "jitter_s": 0, "daily_new_peers": 1000}, FIRST_LEASE
    )
    stalled = create_service_for(pool)  # sender A
    late = await stall_after_commit(
        pool, stalled, [due_record(e, campaign, account, FIRST_LEASE) for e in executions]
    )
    assert len(late) == 1

    # A's lease runs out; sender B claims the executions again, re-sends s1 (deduplicated by
    # random_id), records it, and the executions stand on s2, due.
    await pool.execute("UPDATE executions SET lease_until = $1", SECOND_LEASE)
    other = create_service_for(pool)
    await consumer_at(pool, other, LATER).process(
        [due_record(e, campaign, account, SECOND_LEASE) for e in executions]
    )
    before = await pool.fetch("SELECT id, status, current_node_id, context FROM executions")
    assert {(r["status"], r["current_node_id"]) for r in before} == {("pending", "s2")}
    sent_before = await events_of(pool, "message.sent")
    assert len(sent_before) == 3

    # A resumes: its answers (Telegram deduplicated them) change no record, so they move nothing.
    for work in late:
        await work()

    after = await pool.fetch("SELECT id, status, current_node_id, context FROM executions")
    assert sorted((r["id"], r["status"], r["current_node_id"]) for r in after) == sorted(
        (r["id"], r["status"], r["current_node_id"]) for r in before
    )
    assert all(r["context"]["flow"]["sends"] == 1 for r in after)
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 3
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'sent'") == 3
    assert await events_of(pool, "message.sent") == sent_before  # no second message.sent

    # And s2 still goes: the next step sends it, and every execution ends after two messages.
    await pool.execute("UPDATE executions SET lease_until = NULL")
    await consumer_at(pool, other, LATER).process(
        [due_record(e, campaign, account, None) for e in executions]  # type: ignore[arg-type]
    )
    finished = await pool.fetch("SELECT status, current_node_id FROM executions")
    assert {(r["status"], r["current_node_id"]) for r in finished} == {("completed", "end")}
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 6
    bodies = await pool.fetch("SELECT body, count(*) AS n FROM messages GROUP BY body")
    assert {(r["body"], r["n"]) for r in bodies} == {("first", 3), ("second", 3)}


async def test_a_late_failure_for_a_recorded_send_changes_nothing(
    pool: asyncpg.Pool[Any],
) -> None:
    """A stalled sender's failure answer (a flood wait, a refused peer, a transient error, a dead
    account) for a send another sender has since recorded as sent neither touches the record nor
    moves, defers or fails the execution standing on its next node."""
    account, campaign, executions = await seed(
        pool, 1, {"min_gap_s": 0, "jitter_s": 0, "daily_new_peers": 1000}, FIRST_LEASE
    )
    service = create_service_for(pool)
    await stall_after_commit(
        pool, service, [due_record(executions[0], campaign, account, FIRST_LEASE)]
    )
    await pool.execute("UPDATE executions SET lease_until = $1", SECOND_LEASE)
    await consumer_at(pool, service, LATER).process(
        [due_record(executions[0], campaign, account, SECOND_LEASE)]
    )
    message = await pool.fetchrow("SELECT id, status FROM messages")
    assert message is not None
    assert message["status"] == "sent"
    before = await pool.fetchrow(
        "SELECT status, current_node_id, next_execution_at FROM executions"
    )
    assert before is not None
    assert before["current_node_id"] == "s2"
    failed_before = await events_of(pool, "message.failed")

    handler = service.handlers[Topic.EXECUTIONS_DUE][MessageType.EXECUTION_DUE.value]
    steps: Steps = handler.__self__
    gateway_account = Account(account, "simulated", {})
    for error in (
        Transient("timeout"),
        ContactPermanent("UserPrivacyRestrictedError"),
        RetryAfter(30, "FloodWaitError"),
    ):
        await steps.answers.failed(gateway_account, message["id"], executions[0], error, Pacing())

    after = await pool.fetchrow("SELECT status, current_node_id, next_execution_at FROM executions")
    assert after is not None
    assert dict(after) == dict(before)
    assert await pool.fetchval("SELECT status FROM messages WHERE id = $1", message["id"]) == "sent"
    assert await events_of(pool, "message.failed") == failed_before

    # A dead account is still the account's truth (its health moves), but the execution on s2
    # is not failed by an answer that belongs to s1.
    await steps.answers.failed(
        gateway_account,
        message["id"],
        executions[0],
        AccountDead("UserDeactivatedBanError", "banned"),
        Pacing(),
    )
    row = await pool.fetchrow("SELECT status, current_node_id FROM executions")
    assert row is not None
    assert (row["status"], row["current_node_id"]) == ("pending", "s2")
    assert await pool.fetchval("SELECT health_status FROM telegram_accounts") == "banned"


async def test_a_crash_mid_batch_charges_no_new_peer_twice_and_reconciles_at_once(
    pool: asyncpg.Pool[Any],
) -> None:
    """Issue 13, item 2: the budget is reserved when a send is first claimed; re-sending its
    queued record after a crash needs no new budget and is not deferred to tomorrow."""
    budget = 10
    account, campaign, executions = await seed(
        pool, budget, {"min_gap_s": 0, "jitter_s": 0, "daily_new_peers": budget}, FIRST_LEASE
    )
    crashed = create_service_for(pool)
    late = await stall_after_commit(
        pool, crashed, [due_record(e, campaign, account, FIRST_LEASE) for e in executions]
    )
    assert len(late) == 1  # never run: the process died
    assert await pool.fetchval("SELECT sent_today FROM telegram_accounts") == budget
    # Some of the batch had reached Telegram before the crash.
    steps: Steps = crashed.handlers[Topic.EXECUTIONS_DUE][MessageType.EXECUTION_DUE.value].__self__
    queued = await pool.fetch("SELECT body, random_id FROM messages ORDER BY id LIMIT 4")
    sim = Account(account, "simulated", {})
    from services.sender.gateway import Peer

    for i, record in enumerate(queued):
        await steps.gateway.send(
            sim, Peer(f"late{i}", executions[i]), record["body"], record["random_id"], NOW
        )

    await pool.execute("UPDATE executions SET lease_until = $1", SECOND_LEASE)
    restarted = create_service_for(pool)
    await consumer_at(pool, restarted, LATER).process(
        [due_record(e, campaign, account, SECOND_LEASE) for e in executions]
    )

    assert await pool.fetchval("SELECT sent_today FROM telegram_accounts") == budget
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'queued'") == 0
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'sent'") == budget
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == budget
    rows = await pool.fetch("SELECT status, current_node_id, next_execution_at FROM executions")
    # Every s1 is reconciled; each execution stands on s2, which is a known peer's send now.
    assert {(r["status"], r["current_node_id"]) for r in rows} == {("pending", "s2")}
    # Due now (by the consumer's clock or the service's, whichever saved it), not tomorrow.
    due_by = max(LATER, datetime.now(UTC))
    assert all(r["next_execution_at"] <= due_by for r in rows)
