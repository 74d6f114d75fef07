"""Statistics: freshness under a flow of events, and the latency of reading them.

    .venv/bin/python -m bench.stats [--campaigns 10000] [--executions-each 100]
                                    [--rate 5000] [--seconds 30] [--reads 2000]

It starts its own embedded PostgreSQL and Tansu and the real api and stats processes, and seeds
--campaigns campaigns of --executions-each executions (mixed statuses, A/B variants, a message
per started execution, replies) directly in the database. Then:
- GET /campaign-flows/{id}/statistics for random campaigns, one request at a time: p50 and p99
  (target: p99 under 20 ms with 10,000 campaigns and 1,000,000 executions);
- --rate execution events per second for --seconds, spread over every campaign and keyed by
  campaign as the sender keys them, while the stats service refreshes what they touch:
  freshness (seconds from an event until its campaign's figures were refreshed) p50 and p99
  from the service's own dripline_stats_lag_seconds histogram (target: p99 under 1 s);
- the baseline: recounting every campaign in one statement, and what one campaign costs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from bench.infra import embedded
from bench.report import Figure, record
from dripline.admin import create_user
from dripline.infra import free_port
from dripline.processes import ServiceProcess
from shared.db.pool import connect
from shared.messaging.contracts import ExecutionProgressed, MessageType
from shared.messaging.envelope import new_envelope
from shared.messaging.topics import Topic
from shared.settings import Settings

SEED = """
WITH campaigns_ AS (
    INSERT INTO campaigns (created_by, name, status, launched_at)
    SELECT $1, 'stats ' || n, 'active', now() FROM generate_series(1, $2) n
    RETURNING id
), people AS (
    INSERT INTO contacts (owner_user_id, telegram_username)
    SELECT $1, 'stats_' || n FROM generate_series(1, $3) n
    RETURNING id
)
INSERT INTO executions (campaign_id, contact_id, status, started_at, variant, completed_at)
SELECT c.id, p.id, s.status,
       CASE WHEN s.status <> 'pending' THEN now() END,
       CASE WHEN random() < 0.5 THEN 'A' ELSE 'B' END,
       CASE WHEN s.status IN ('completed', 'failed') THEN now() END
FROM campaigns_ c, people p,
     LATERAL (SELECT CASE WHEN r < 0.6 THEN 'completed' WHEN r < 0.7 THEN 'failed'
                          WHEN r < 0.8 THEN 'waiting' ELSE 'pending' END AS status
              FROM (SELECT random() + (p.id IS NULL)::int AS r) x) s;
"""
SEED_MESSAGES = """
INSERT INTO messages (campaign_id, execution_id, contact_id, variant, direction, body, status,
                      sent_at)
SELECT e.campaign_id, e.id, e.contact_id, e.variant, 'outgoing', 'Hello',
       CASE WHEN e.status = 'failed' THEN 'failed'
            WHEN random() < 0.5 THEN 'read' WHEN random() < 0.5 THEN 'delivered'
            ELSE 'sent' END,
       now()
FROM executions e WHERE e.status <> 'pending';
INSERT INTO messages (campaign_id, execution_id, contact_id, variant, direction, body, status)
SELECT e.campaign_id, e.id, e.contact_id, e.variant, 'incoming', 'Thanks', 'received'
FROM executions e WHERE e.status = 'completed' AND random() < 0.2;
"""
RECOUNT_ALL = """
SELECT refresh_statistics('{}', ids, ids, array_fill(NULL::timestamptz, ARRAY[cardinality(ids)]),
                          now())
FROM (SELECT ARRAY(SELECT id FROM campaigns) AS ids) all_campaigns
"""
# Executions the flow of events moves between waiting and running, as the sender's steps would:
# every event reports a real change, so the stats service does real work for each.
MOVING = "SELECT campaign_id, id FROM executions WHERE status = 'waiting'"
STEP = """
UPDATE executions SET status = CASE status WHEN 'waiting' THEN 'running' ELSE 'waiting' END
WHERE id = ANY($1::uuid[])
"""


async def main(campaigns: int, executions_each: int, rate: int, seconds: int, reads: int) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        issued = await create_user(connection, "bench@example.com")
        total = campaigns * executions_each
        print(f"seeding {campaigns:,} campaigns x {executions_each} executions ({total:,}) ...",
              flush=True)  # fmt: skip
        started = time.perf_counter()
        await connection.execute(SEED, issued.user_id, campaigns, executions_each)
        await connection.execute(SEED_MESSAGES)
        await connection.execute("VACUUM ANALYZE")
        messages = await connection.fetchval("SELECT count(*) FROM messages")
        print(f"seeded in {time.perf_counter() - started:.0f} s ({messages:,} messages)")
        started = time.perf_counter()
        await connection.execute(RECOUNT_ALL)
        recount_all = time.perf_counter() - started
        ids = [r["id"] for r in await connection.fetch("SELECT id FROM campaigns")]
        executions = [(r["campaign_id"], r["id"]) for r in await connection.fetch(MOVING)]
        print(f"{len(executions):,} waiting executions to move")
        one = []
        for campaign_id in random.sample(ids, 200):
            started = time.perf_counter()
            await connection.fetch("SELECT * FROM get_campaign_statistics($1)", campaign_id)
            one.append(time.perf_counter() - started)
        await connection.execute("VACUUM ANALYZE campaign_stats")
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            api_port=free_port(),
            stats_port=free_port(),
            kafka_session_timeout_ms=1500,
            kafka_heartbeat_interval_ms=300,
        )
        processes = {name: ServiceProcess(name, settings) for name in ("api", "stats")}
        try:
            for process in processes.values():
                process.start()
            for process in processes.values():
                await process.wait_healthy()
            await asyncio.sleep(3)  # consumer groups settle
            async with httpx.AsyncClient(
                base_url=processes["api"].url,
                headers={"Authorization": f"Bearer {issued.plaintext}"},
                timeout=30,
            ) as api:
                await _reads(api, ids, 100)  # warm up connections and plans
                latencies = await _reads(api, ids, reads)
            async with httpx.AsyncClient(base_url=processes["stats"].url) as stats:
                before, work_before = await lag_buckets(stats), await _work(stats)
                produced, elapsed = await _events(settings, connection, executions, rate, seconds)
                settled_s = await caught_up(connection, produced)
                after, work_after = await lag_buckets(stats), await _work(stats)
            async with httpx.AsyncClient(
                base_url=processes["api"].url,
                headers={"Authorization": f"Bearer {issued.plaintext}"},
                timeout=30,
            ) as api:
                busy_latencies = await _reads(api, ids, min(reads, 500))
        finally:
            for process in processes.values():
                process.stop()
            await connection.close()
    lag = {bound: after[bound] - before.get(bound, 0) for bound in after}
    p50, p99 = quantile(lag, 0.5), quantile(lag, 0.99)
    print(f"recount baseline: every campaign through refresh_statistics, one statement: "
          f"{recount_all:.1f} s "
          f"({recount_all / campaigns * 1000:.2f} ms per campaign); one campaign by "
          f"get_campaign_statistics p50 {ms_at(one, 0.5)}, p99 {ms_at(one, 0.99)}")  # fmt: skip
    print(f"GET statistics ({campaigns:,} campaigns, {total:,} executions), {len(latencies)} "
          f"sequential reads: p50 {ms_at(latencies, 0.5)}, p99 {ms_at(latencies, 0.99)} "
          f"(target p99 < 20 ms)")  # fmt: skip
    print(f"  after the event flow, {len(busy_latencies)} reads: p50 "
          f"{ms_at(busy_latencies, 0.5)}, p99 {ms_at(busy_latencies, 0.99)}")  # fmt: skip
    print(f"events: {produced:,} in {elapsed:.1f} s ({produced / elapsed:,.0f}/s, asked "
          f"{rate:,}/s); all applied {settled_s:.1f} s after the last was produced")  # fmt: skip
    work = {name: work_after.get(name, 0) - work_before.get(name, 0) for name in work_after}
    batches = work["dripline_consumer_batch_seconds_count"] or 1
    print(
        f"stats service: {batches:,.0f} batches of {produced / batches:,.0f} events on average, "
        f"{work['dripline_consumer_batch_seconds_sum'] / batches * 1000:.0f} ms each, of which "
        f"the refresh {work['dripline_stats_refresh_seconds_sum'] / batches * 1000:.0f} ms"
    )
    print(f"freshness over {int(lag[float('inf')]):,} events: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms (target p99 < 1 s; from histogram buckets)")  # fmt: skip
    record(Figure("stats", "freshness p99", p99 * 1000, "ms", "lower", 1000.0))
    record(Figure("stats", "GET statistics p99", seconds_at(latencies, 0.99) * 1000, "ms",
                  "lower", 20.0))  # fmt: skip
    record(Figure("stats", "GET statistics p99, busy", seconds_at(busy_latencies, 0.99) * 1000,
                  "ms", "lower", 20.0))  # fmt: skip


async def _reads(api: httpx.AsyncClient, ids: list[Any], count: int) -> list[float]:
    latencies = []
    for campaign_id in random.choices(ids, k=count):
        started = time.perf_counter()
        response = await api.get(f"/campaign-flows/{campaign_id}/statistics")
        latencies.append(time.perf_counter() - started)
        if response.status_code != 200 or not response.json()["materialized"]:
            raise RuntimeError(f"unexpected answer: {response.status_code} {response.text}")
    return latencies


async def _events(
    settings: Settings,
    connection: Any,
    executions: list[tuple[Any, Any]],
    rate: int,
    seconds: int,
) -> tuple[int, float]:
    """`rate` execution.progressed events a second about random executions, in slices of
    20 ms, keyed by campaign as the sender keys them."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5,
                                enable_idempotence=False, max_batch_size=1024 * 1024)  # fmt: skip
    topic = settings.topic_prefix + Topic.EXECUTION_EVENTS.value
    await producer.start()
    produced, slice_s = 0, 0.02
    started = time.perf_counter()
    try:
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * rate) + int(rate * slice_s)
            moved = random.choices(executions, k=max(0, due - produced))
            await connection.execute(STEP, [execution_id for _, execution_id in moved])
            now = datetime.now(UTC)
            for campaign_id, execution_id in moved:
                event = ExecutionProgressed(
                    execution_id=execution_id, campaign_id=campaign_id, contact_id=uuid.uuid4(),
                    previous_status="pending", status="waiting", node_id="hello",
                )  # fmt: skip
                envelope = new_envelope(type=MessageType.EXECUTION_PROGRESSED, payload=event,
                                        occurred_at=now, actor=None)  # fmt: skip
                await producer.send(topic, envelope.to_bytes(), key=str(campaign_id).encode())
            produced = max(produced, due)
            await asyncio.sleep(slice_s)
        await producer.flush()
    finally:
        await producer.stop()
    return produced, time.perf_counter() - started


async def caught_up(connection: Any, produced: int) -> float:
    """Seconds until the stats service has applied `produced` execution events."""
    started = time.perf_counter()
    while True:
        applied = await connection.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = 'stats' AND topic LIKE $1",
            "%" + Topic.EXECUTION_EVENTS.value,
        )
        if applied >= produced:
            return time.perf_counter() - started
        if time.perf_counter() - started > 300:
            raise RuntimeError(f"stats applied {applied} of {produced} events in 300 s")
        await asyncio.sleep(0.2)


async def lag_buckets(stats: httpx.AsyncClient) -> dict[float, float]:
    text = (await stats.get("/metrics")).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("dripline_stats_lag_seconds_bucket")
            and Topic.EXECUTION_EVENTS.value in line
        ):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = buckets.get(float(bound), 0) + float(line.rsplit(" ", 1)[1])
    return buckets


async def _work(stats: httpx.AsyncClient) -> dict[str, float]:
    """The stats service's batch and refresh time totals on the execution events topic."""
    totals: dict[str, float] = {}
    for line in (await stats.get("/metrics")).text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        wanted = name in (
            "dripline_stats_refresh_seconds_sum",
            "dripline_stats_refresh_seconds_count",
        )
        batch = name.startswith("dripline_consumer_batch_seconds_") and (
            Topic.EXECUTION_EVENTS.value in line and not name.endswith("_bucket")
        )
        if wanted or batch:
            totals[name] = totals.get(name, 0) + float(line.rsplit(" ", 1)[1])
    return totals


def quantile(buckets: dict[float, float], q: float) -> float:
    """histogramquantile(): linear interpolation inside the bucket that holds the quantile."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total == 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for bound in bounds:
        if buckets[bound] >= rank:
            if bound == float("inf"):
                return lower
            inside = buckets[bound] - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0)
        lower, below = bound, buckets[bound]
    return lower


def seconds_at(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms_at(values: list[float], q: float) -> str:
    return f"{seconds_at(values, q) * 1000:.1f} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--executions-each", type=int, default=100)
    parser.add_argument("--rate", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--reads", type=int, default=2_000)
    args = parser.parse_args()
    asyncio.run(main(args.campaigns, args.executions_each, args.rate, args.seconds, args.reads))
