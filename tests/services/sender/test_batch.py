"""The sender steps a consumed batch of due events set-based: pacing still runs per account in
batch order, an execution moves once per batch, and the gateways' batch sends keep the
one-message-per-random_id rule (the simulator's in one round trip, any other adapter one `send`
at a time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.sender.gateway import (
    Account,
    AccountDead,
    AccountFrozen,
    AccountLimited,
    ContactPermanent,
    Delivery,
    Gateways,
    Media,
    Outgoing,
    Peer,
    RetryAfter,
    send_all,
)
from services.sender.simulator import SimulatedTelegram
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.topics import Topic
from tests.builders import FLOW
from tests.services.builders import create_service_for, due_record

NOW = datetime.now(UTC).replace(microsecond=0)
LEASE = NOW + timedelta(seconds=60)


async def an_account(pool: asyncpg.Pool[Any], user: UUID, pacing: dict[str, Any]) -> UUID:
    account: UUID = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status,"
        " pacing) VALUES ($1, 'sim', 'simulated', 'active', $2) RETURNING id",
        user,
        pacing,
    )
    return account


async def executions_on(
    pool: asyncpg.Pool[Any], user: UUID, account: UUID, usernames: list[str]
) -> tuple[UUID, list[UUID]]:
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow)"
        " VALUES ($1, 'c', 'active', $2, $3) RETURNING id",
        user,
        account,
        FLOW,
    )
    ids = []
    for username in usernames:
        contact = await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
            " VALUES ($1, $2, 'Cy') RETURNING id",
            user,
            username,
        )
        ids.append(
            await pool.fetchval(
                "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at,"
                " lease_until) VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
                campaign,
                contact,
                NOW,
                LEASE,
            )
        )
    return campaign, ids


def consumer(pool: asyncpg.Pool[Any]) -> BatchConsumer:
    service = create_service_for(pool)
    return BatchConsumer(
        name="sender",
        topic=Topic.EXECUTIONS_DUE,
        handlers=service.handlers[Topic.EXECUTIONS_DUE],
        pool=pool,
        clock=FixedClock(NOW),
    )


async def test_a_batch_paces_each_account_in_batch_order(pool: asyncpg.Pool[Any]) -> None:
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('b@example.com') RETURNING id")
    slow = await an_account(pool, user, {"min_gap_s": 45, "jitter_s": 0})
    fast = await an_account(pool, user, {"min_gap_s": 0, "jitter_s": 0})
    slow_campaign, slow_runs = await executions_on(pool, user, slow, ["s1", "s2", "s3"])
    fast_campaign, fast_runs = await executions_on(pool, user, fast, ["f1", "f2"])
    records = [due_record(e, slow_campaign, slow, LEASE) for e in slow_runs]
    records += [due_record(e, fast_campaign, fast, LEASE) for e in fast_runs]

    await consumer(pool).process(records)

    rows = {
        r["id"]: r
        for r in await pool.fetch(
            "SELECT id, status, current_node_id, next_execution_at, lease_until FROM executions"
        )
    }
    # The slow account's first send goes; the next two wait out its gap, released.
    assert (rows[slow_runs[0]]["status"], rows[slow_runs[0]]["current_node_id"]) == (
        "waiting",
        "wait",
    )
    for later in slow_runs[1:]:
        assert rows[later]["status"] == "pending"
        assert rows[later]["current_node_id"] == "hello"
        assert rows[later]["next_execution_at"] == NOW + timedelta(seconds=45)
        assert rows[later]["lease_until"] is None
    for run in fast_runs:
        assert rows[run]["status"] == "waiting"
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE status = 'sent'") == 3
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 3
    paces = {
        r["id"]: r
        for r in await pool.fetch("SELECT id, last_send_at, sent_today FROM telegram_accounts")
    }
    assert (paces[slow]["last_send_at"], paces[slow]["sent_today"]) == (NOW, 1)
    assert (paces[fast]["last_send_at"], paces[fast]["sent_today"]) == (NOW, 2)
    sent = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'message.sent'"
    )
    assert sent == 3


async def test_an_execution_moves_once_per_batch(pool: asyncpg.Pool[Any]) -> None:
    user = await pool.fetchval("INSERT INTO users (email) VALUES ('r@example.com') RETURNING id")
    account = await an_account(pool, user, {"min_gap_s": 0, "jitter_s": 0})
    campaign, (execution,) = await executions_on(pool, user, account, ["twice"])
    stale = due_record(execution, campaign, account, NOW - timedelta(seconds=1))
    records = [stale, due_record(execution, campaign, account, LEASE)]
    records.append(due_record(execution, campaign, account, LEASE))  # emitted twice

    await consumer(pool).process(records)

    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 1
    assert await pool.fetchval("SELECT count(*) FROM messages") == 1
    row = await pool.fetchrow("SELECT status, current_node_id FROM executions")
    assert row is not None
    assert (row["status"], row["current_node_id"]) == ("waiting", "wait")


async def test_the_simulator_sends_a_batch_once_per_random_id(pool: asyncpg.Pool[Any]) -> None:
    simulator = SimulatedTelegram(lambda: pool)
    plain = Account(uuid4(), "simulated", {"contacts": {"ghost": {"deleted": True}}})
    bursty = Account(uuid4(), "simulated", {"burst": {"sends": 1, "flood_wait_s": 30}})
    sends = [
        Outgoing(plain, Peer("ada", uuid4()), "Hi", 1),
        Outgoing(plain, Peer("ghost", uuid4()), "Hi", 2),
        Outgoing(bursty, Peer("bob", uuid4()), "Hi", 3),
        Outgoing(bursty, Peer("cy", uuid4()), "Hi", 4),  # over the burst: one at a time
    ]
    first = await simulator.send_many(sends, FixedClock(NOW))
    assert isinstance(first[0], Delivery)
    assert not first[0].duplicate
    assert isinstance(first[1], ContactPermanent)
    assert isinstance(first[2], Delivery)
    assert not first[2].duplicate
    assert isinstance(first[3], RetryAfter)

    again = await simulator.send_many(sends[:3], FixedClock(NOW + timedelta(seconds=5)))
    assert isinstance(again[0], Delivery)
    assert again[0].duplicate
    assert again[0].telegram_message_id == first[0].telegram_message_id
    assert again[0].sent_at == NOW
    assert isinstance(again[1], ContactPermanent)
    assert isinstance(again[2], Delivery)
    assert again[2].duplicate
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 2


class OneAtATime:
    """An adapter with only the per-message send (as Telethon's is)."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, datetime]] = []

    async def send(
        self,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        self.calls.append((random_id, now))
        if random_id == 2:
            raise RetryAfter(5)
        if random_id == 3:
            raise RuntimeError("the adapter broke")
        return Delivery(random_id * 10, now)

    async def probe(self, account: Account, now: datetime, *, ask_spambot: bool = False) -> None:
        return None

    async def updates(self, connection: Any, now: datetime) -> list[Any]:
        return []

    async def read_history(self, account: Account, peer: Peer, now: datetime) -> None:
        return None


@pytest.mark.parametrize("routed", [False, True], ids=["adapter", "through-gateways"])
async def test_an_adapter_without_batches_sends_one_at_a_time(routed: bool) -> None:
    adapter = OneAtATime()
    sends = [
        Outgoing(Account(uuid4(), "telethon", {}), Peer(f"p{i}", uuid4()), "Hi", i)
        for i in (1, 2, 3, 4)
    ]
    gateway: Any = Gateways({"telethon": adapter}) if routed else adapter
    results = await send_all(gateway, sends, FixedClock(NOW))
    assert [call[0] for call in adapter.calls] == [1, 2, 3, 4]
    assert isinstance(results[0], Delivery)
    assert results[0].telegram_message_id == 10
    assert isinstance(results[1], RetryAfter)
    assert results[2] is None  # broke: logged, its record left to the lease
    assert isinstance(results[3], Delivery)


class AccountTrouble(OneAtATime):
    """Send 2 meets an account's trouble: a flood wait, a limit, a freeze or a lost session."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    async def send(
        self,
        account: Account,
        peer: Peer,
        text: str,
        random_id: int,
        now: datetime,
        media: Media | None = None,
    ) -> Delivery:
        self.calls.append((random_id, now))
        if random_id == 2:
            raise self.error
        return Delivery(random_id * 10, now)


@pytest.mark.parametrize(
    "error",
    [
        RetryAfter(5),
        AccountLimited("PEER_FLOOD"),
        AccountFrozen("FROZEN_METHOD_INVALID"),
        AccountDead("AUTH_KEY_UNREGISTERED", "auth_lost"),
    ],
    ids=["flood-wait", "limited", "frozen", "dead"],
)
async def test_an_account_in_trouble_sends_nothing_more_in_the_batch(error: Exception) -> None:
    """Its later sends get the same answer untried; another account's still go."""
    adapter = AccountTrouble(error)
    troubled, other = Account(uuid4(), "telethon", {}), Account(uuid4(), "telethon", {})
    owners = {1: troubled, 2: troubled, 3: other, 4: troubled}
    sends = [Outgoing(owners[i], Peer(f"p{i}", uuid4()), "Hi", i) for i in (1, 2, 3, 4)]
    results = await send_all(adapter, sends, FixedClock(NOW))
    assert [call[0] for call in adapter.calls] == [1, 2, 3]
    assert isinstance(results[0], Delivery)
    assert results[1] is error
    assert isinstance(results[2], Delivery)
    assert results[3] is error


async def test_gateways_answer_an_unknown_kind_as_transient() -> None:
    gateway = Gateways({"telethon": OneAtATime()})
    sends = [Outgoing(Account(uuid4(), "carrier-pigeon", {}), Peer("x", uuid4()), "Hi", 1)]
    (result,) = await send_all(gateway, sends, FixedClock(NOW))
    assert type(result).__name__ == "Transient"
