"""Dispatch throughput: due executions claimed and emitted to Kafka per second.

    .venv/bin/python -m bench.dispatch [--executions 100000]   (or: make bench)

It starts its own embedded PostgreSQL and Tansu in a temporary directory, seeds active campaigns
with due executions, and measures two things on the same data:

- the raw ceiling: the claim query in batches of 2,000 and the events produced straight to
  Kafka with aiokafka's batch API, grouped by partition; no service code;
- ours: the scheduler's `dispatch_due` (claim, envelopes, outbox, in one transaction per batch)
  with the outbox relay publishing to Kafka, until every event is on the topic.

It prints both rates and ours as a ratio of the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.infra import embedded
from bench.report import Figure, record
from services.scheduler import dispatch
from shared.db.pool import connect, create_pool, fetch_replanned
from shared.messaging.kafka import relay_producer
from shared.messaging.outbox import OutboxRelay
from shared.messaging.topics import Topic, physical_name
from shared.runtime import Service
from shared.settings import Settings

ACCOUNTS = 16

SEED = """
WITH owner AS (INSERT INTO users (email) VALUES ('bench@example.com') RETURNING id),
accounts AS (
    INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind, health_status)
    SELECT owner.id, 'bench ' || n, 'simulated', 'active' FROM owner, generate_series(1, $2) n
    RETURNING id, owner_user_id
), campaigns_ AS (
    INSERT INTO campaigns (created_by, name, status, telegram_account_id)
    SELECT owner_user_id, 'bench', 'active', id FROM accounts
    RETURNING id
), people AS (
    INSERT INTO contacts (owner_user_id, telegram_username)
    SELECT owner.id, 'bench_' || n FROM owner, generate_series(1, $1) n
    RETURNING id, telegram_username
), numbered AS (
    SELECT id, row_number() OVER () AS n FROM campaigns_
)
INSERT INTO executions (campaign_id, contact_id, next_execution_at)
SELECT c.id, p.id, now() - interval '1 minute'
FROM people p
JOIN numbered c ON c.n = 1 + substr(p.telegram_username, 7)::int % $2;
"""
RESET = "UPDATE executions SET lease_until = NULL, dispatched_at = NULL"


async def raw_ceiling(pool: asyncpg.Pool[Any], bootstrap: str, topic: str) -> float:
    claim = dispatch.QUERIES["claim_due"]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=2,
        max_batch_size=1024 * 1024,
        enable_idempotence=False,
    )
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
        total, started = 0, time.perf_counter()
        while True:
            now = datetime.now(UTC)
            async with pool.acquire() as connection, connection.transaction():
                # As dispatch runs it: planned at the call (a cached generic plan of a bound
                # LIMIT scans the table).
                rows = await fetch_replanned(
                    connection, claim, now, now + timedelta(minutes=5), dispatch.CLAIM_BATCH
                )
            if not rows:
                break
            by_partition: dict[int, Any] = defaultdict(producer.create_batch)
            for row in rows:
                key = str(row["telegram_account_id"]).encode()
                value = json.dumps({"execution_id": str(row["id"])}).encode()
                partition = partitions[hash(key) % len(partitions)]
                by_partition[partition].append(key=key, value=value, timestamp=None)
            sends = [
                await producer.send_batch(batch, topic, partition=p)
                for p, batch in by_partition.items()
            ]
            await asyncio.gather(*sends)
            total += len(rows)
        return total / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def ours(pool: asyncpg.Pool[Any], settings: Settings, expected: int) -> float:
    service = Service("scheduler", settings, description="bench")
    service._pool = pool  # as if started: dispatch_due needs only the pool and the clock
    producer = relay_producer(settings)
    await producer.start()
    relay = OutboxRelay(
        pool, producer, bootstrap_servers=settings.bootstrap_servers,
        topic_prefix=settings.topic_prefix, poll_interval_s=0.05,
    )  # fmt: skip
    relay_task = asyncio.create_task(relay.run())
    try:
        started = time.perf_counter()
        emitted = await dispatch.dispatch_due(service)
        assert emitted == expected, (emitted, expected)
        while True:
            unsent = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            if not unsent:
                break
            await asyncio.sleep(0.02)
        return expected / (time.perf_counter() - started)
    finally:
        relay_task.cancel()
        await asyncio.gather(relay_task, return_exceptions=True)
        await relay.drain()
        await producer.stop()


async def main(executions: int) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        await connection.execute(SEED, executions, ACCOUNTS)
        await connection.execute("VACUUM ANALYZE executions")
        await connection.close()
        # No sender steps anything here: the in-flight bound is lifted so one sweep claims the
        # whole backlog, which is the claim path's own rate (bench.engine drains with the bound).
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            dispatch_max_in_flight=executions + 1,
        )
        pool = await create_pool(infra.dsn, min_size=2, max_size=4)
        topic = physical_name(Topic.EXECUTIONS_DUE.value, infra.topic_prefix)
        try:
            ceilings, rates = [], []
            for _ in range(3):
                await pool.execute(RESET)
                await pool.execute("VACUUM executions")
                ceilings.append(await raw_ceiling(pool, infra.bootstrap, topic))
                await pool.execute(RESET)
                await pool.execute("VACUUM executions")
                await pool.execute("TRUNCATE outbox")
                rates.append(await ours(pool, settings, executions))
        finally:
            await pool.close()
    ceiling, rate = sorted(ceilings)[1], sorted(rates)[1]
    print(f"executions:             {executions}")
    print(f"raw ceiling (claim + batched produce): {ceiling:,.0f} per second (median of 3)")
    print(f"ours (dispatch_due + outbox relay):    {rate:,.0f} per second (median of 3)")
    print(f"ratio:                  {rate / ceiling:.0%} of the ceiling (target 70%)")
    record(Figure("dispatch", "claim + outbox + relay", rate, "/s", "higher", None, ceiling))
    record(Figure("dispatch", "share of the raw ceiling", rate / ceiling, "", "higher", 0.7))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().executions))
