"""Bulk operations end to end: HTTP request, Kafka, the scheduler's batches, the final answer.

    .venv/bin/python -m bench.bulk [--campaigns 1000] [--executions-each 1000] [--enable 10000]
                                   [--index-set current|before-0025]

The sizes default to BULK_CAMPAIGNS, BULK_EXECUTIONS_EACH and BULK_ENABLE when set (the full size,
1,000 x 1,000 and 10,000, otherwise). `--index-set before-0025` puts back the executions index
set of before migration 0025 (one (campaign_id, status) index over every row) before seeding, so
two runs compare the index sets with the same code; the raw baseline is always measured on the
schema the services run on.

It starts its own embedded PostgreSQL and Tansu and the real api and scheduler processes, seeds
directly in the database, and times POST /campaign-flows/bulk with `wait` until the final
result arrives:
- bulk stop of --campaigns active campaigns holding --executions-each executions each
  (target: 1,000 campaigns and 1,000,000 executions within 10 s);
- bulk enable of --enable disabled campaigns (target: 10,000 within 5 s).
The baseline is the raw SQL the stop cannot avoid (cancel every execution, one statement, rolled
back), so the ratio says what the services add to it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import httpx

from bench.infra import embedded
from bench.report import Figure, record
from dripline.admin import create_user
from dripline.infra import free_port
from dripline.processes import ServiceProcess
from shared.db.pool import connect
from shared.settings import Settings

SEED_ACTIVE = """
WITH campaigns_ AS (
    INSERT INTO campaigns (created_by, name, status, launched_at)
    SELECT $1, 'stop me ' || n, 'active', now() FROM generate_series(1, $2) n
    RETURNING id
), people AS (
    INSERT INTO contacts (owner_user_id, telegram_username)
    SELECT $1, 'bulk_' || n FROM generate_series(1, $3) n
    RETURNING id
)
INSERT INTO executions (campaign_id, contact_id, status, next_execution_at)
SELECT c.id, p.id, 'pending', now() + interval '1 day' FROM campaigns_ c, people p;
"""
SEED_DISABLED = """
INSERT INTO campaigns (created_by, name, status, enabled)
SELECT $1, 'enable me ' || n, 'draft', false FROM generate_series(1, $2) n;
"""
RAW_STOP = """
UPDATE executions SET status = 'cancelled', completed_at = now(), lease_until = NULL,
                      error_message = 'Campaign stopped by user', updated_at = now()
WHERE campaign_id = ANY($1::uuid[]) AND status IN ('pending', 'running', 'waiting', 'paused');
"""
# The executions index set of before migration 0025, for a comparison run.
BEFORE_0025 = """
DROP INDEX executions_unfinished_idx;
DROP INDEX executions_finished_idx;
CREATE INDEX executions_campaign_status_idx ON executions (campaign_id, status);
"""


async def main(campaigns: int, executions_each: int, enable: int, index_set: str) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        if index_set == "before-0025":
            await connection.execute(BEFORE_0025)
        issued = await create_user(connection, "bench@example.com")
        print(f"seeding {campaigns} active campaigns x {executions_each} executions ...",
              flush=True)  # fmt: skip
        await connection.execute(SEED_ACTIVE, issued.user_id, campaigns, executions_each)
        await connection.execute(SEED_DISABLED, issued.user_id, enable)
        await connection.execute("VACUUM ANALYZE")
        active = [r["id"] for r in await connection.fetch(
            "SELECT id::text FROM campaigns WHERE status = 'active'")]  # fmt: skip
        disabled = [r["id"] for r in await connection.fetch(
            "SELECT id::text FROM campaigns WHERE NOT enabled")]  # fmt: skip
        raw = await _raw_stop(connection, active)
        print(f"raw SQL baseline ({index_set} indexes): {raw:.2f} s", flush=True)
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            api_port=free_port(),
            scheduler_port=free_port(),
            kafka_session_timeout_ms=1500,
            kafka_heartbeat_interval_ms=300,
        )
        processes = [ServiceProcess("api", settings), ServiceProcess("scheduler", settings)]
        try:
            for process in processes:
                process.start()
            for process in processes:
                await process.wait_healthy()
            await asyncio.sleep(2)  # consumer groups settle
            async with httpx.AsyncClient(
                base_url=processes[0].url,
                headers={"Authorization": f"Bearer {issued.plaintext}"},
                timeout=120,
            ) as api:
                stop_s, stopped = await _timed(api, "stop", active)
                enable_s, enabled = await _timed(api, "enable", disabled)
        finally:
            for process in processes:
                process.stop()
            await connection.close()
    total = campaigns * executions_each
    cancelled = stopped["cancelled_executions"]
    print(f"index set: {index_set}")
    print(f"stop:    {stopped['success_count']} campaigns, {cancelled:,} executions cancelled "
          f"in {stop_s:.2f} s (target 10 s; {stop_s / 10:.0%} of it)")  # fmt: skip
    print(f"         raw SQL baseline (one UPDATE of {total:,} executions): {raw:.2f} s; "
          f"the services take {stop_s / raw:.2f}x the baseline")  # fmt: skip
    print(f"enable:  {enabled['success_count']} campaigns in {enable_s:.2f} s "
          f"(target 5 s; {enable_s / 5:.0%} of it)")  # fmt: skip
    label = "" if index_set == "current" else f" ({index_set} indexes)"
    record(Figure("bulk", f"stop {total:,} executions{label}", stop_s, "s", "lower", 10.0, raw))
    record(Figure("bulk", f"enable {enabled['success_count']:,}", enable_s, "s", "lower", 5.0))


async def _raw_stop(connection: Any, ids: list[str]) -> float:
    """The one statement a stop cannot avoid, timed and rolled back (then vacuumed away)."""
    transaction = connection.transaction()
    await transaction.start()
    started = time.perf_counter()
    await connection.execute(RAW_STOP, ids)
    elapsed = time.perf_counter() - started
    await transaction.rollback()
    await connection.execute("VACUUM ANALYZE executions")
    return elapsed


async def _timed(api: httpx.AsyncClient, action: str, ids: list[str]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = await api.post(
        "/campaign-flows/bulk", json={"action": action, "campaign_ids": ids, "wait": 60}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{action}: no final result within 60 s: {response.text[:500]}")
    return elapsed, response.json()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--campaigns", type=int, default=int(os.environ.get("BULK_CAMPAIGNS", 1000))
    )
    parser.add_argument(
        "--executions-each", type=int, default=int(os.environ.get("BULK_EXECUTIONS_EACH", 1000))
    )
    parser.add_argument("--enable", type=int, default=int(os.environ.get("BULK_ENABLE", 10_000)))
    parser.add_argument("--index-set", choices=["current", "before-0025"], default="current")
    arguments = parser.parse_args()
    asyncio.run(
        main(arguments.campaigns, arguments.executions_each, arguments.enable, arguments.index_set)
    )
