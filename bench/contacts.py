"""Bulk actions over contacts end to end, through the real api and scheduler.

    .venv/bin/python -m bench.contacts [--contacts 100000]

It starts its own embedded PostgreSQL and Tansu, seeds contacts directly, and measures:
- add_to_campaign of every contact, all at once: from POST /bulk-actions until the action is
  completed (target: 100,000 within 30 s);
- export_contacts of a tenth of them, then of all of them, each written by the scheduler and
  downloaded from GET /exports/{id}: the peak memory (VmHWM) of the scheduler and the api after
  each, which should not grow with the size of the export.
The baseline for the enrolment is the one INSERT … SELECT of every execution, in plain SQL.
"""

from __future__ import annotations

import argparse
import asyncio
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

SEED = """
INSERT INTO contacts (owner_user_id, telegram_username, first_name, tags, custom_fields)
SELECT $1, 'bench_' || n, 'Bench ' || n,
       CASE WHEN n % 10 = 0 THEN ARRAY['bench', 'tenth'] ELSE ARRAY['bench'] END,
       jsonb_build_object('n', n::text)
FROM generate_series(1, $2) AS n;
"""
RAW_ENROL = """
INSERT INTO executions (campaign_id, contact_id, status, next_execution_at, context)
SELECT $1, c.id, 'pending', now(),
       jsonb_build_object('contact', jsonb_build_object('first_name', c.first_name))
FROM contacts c WHERE c.owner_user_id = $2;
"""


def peak_kib(process: ServiceProcess) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    assert process.process is not None
    for line in open(f"/proc/{process.process.pid}/status").read().splitlines():  # noqa: SIM115
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc status")


async def main(contacts: int) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        issued = await create_user(connection, "bench@example.com")
        print(f"seeding {contacts:,} contacts ...", flush=True)
        await connection.execute(SEED, issued.user_id, contacts)
        campaign = await connection.fetchval(
            "INSERT INTO campaigns (created_by, name) VALUES ($1, 'Target') RETURNING id",
            issued.user_id,
        )
        scratch = await connection.fetchval(
            "INSERT INTO campaigns (created_by, name) VALUES ($1, 'Scratch') RETURNING id",
            issued.user_id,
        )
        await connection.execute("VACUUM ANALYZE")
        raw = await _raw_enrol(connection, scratch, issued.user_id)
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            api_port=free_port(),
            scheduler_port=free_port(),
            kafka_session_timeout_ms=1500,
            kafka_heartbeat_interval_ms=300,
        )
        api, scheduler = ServiceProcess("api", settings), ServiceProcess("scheduler", settings)
        try:
            for process in (api, scheduler):
                process.start()
            for process in (api, scheduler):
                await process.wait_healthy()
            async with httpx.AsyncClient(
                base_url=api.url,
                headers={"Authorization": f"Bearer {issued.plaintext}"},
                timeout=120,
            ) as client:
                enrol_s, enrolled = await _run(
                    client,
                    {
                        "name": "Enrol all",
                        "action": "add_to_campaign",
                        "filter": {"tags": ["bench"]},
                        "params": {"campaign_id": str(campaign)},
                    },
                )
                exports = []
                for label, tags in (("a tenth", ["tenth"]), ("all", ["bench"])):
                    export_s, exported = await _run(
                        client,
                        {
                            "name": f"Export {label}",
                            "action": "export_contacts",
                            "filter": {"tags": tags},
                        },
                    )
                    size, download_s = await _download(client, exported["export_url"])
                    exports.append(
                        (
                            label,
                            exported["total"],
                            export_s,
                            size,
                            download_s,
                            peak_kib(scheduler),
                            peak_kib(api),
                        )
                    )
        finally:
            for process in (api, scheduler):
                process.stop()
            await connection.close()
    print(
        f"add_to_campaign: {enrolled['success_count']:,} contacts enrolled all at once in "
        f"{enrol_s:.1f} s (target 30 s; {enrol_s / 30:.0%} of it), "
        f"{enrolled['batches']} batches"
    )
    print(
        f"                 raw SQL baseline (one INSERT of every execution): {raw:.1f} s; "
        f"the services take {enrol_s / raw:.1f}x the baseline"
    )
    record(Figure("contacts", "add_to_campaign", enrol_s, "s", "lower", 30.0, raw))
    for label, rows, export_s, size, download_s, scheduler_kib, api_kib in exports:
        record(Figure("contacts", f"export {label}", export_s + download_s, "s", "lower"))
        print(
            f"export ({label}): {rows:,} contacts written in {export_s:.1f} s, "
            f"{size / 2**20:.1f} MiB downloaded in {download_s:.1f} s; peak memory so far: "
            f"scheduler {scheduler_kib / 1024:.0f} MiB, api {api_kib / 1024:.0f} MiB"
        )


async def _raw_enrol(connection: Any, campaign: Any, owner: Any) -> float:
    transaction = connection.transaction()
    await transaction.start()
    started = time.perf_counter()
    await connection.execute(RAW_ENROL, campaign, owner)
    elapsed = time.perf_counter() - started
    await transaction.rollback()
    await connection.execute("VACUUM ANALYZE executions")
    return elapsed


async def _run(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    created = await client.post("/bulk-actions", json=body)
    if created.status_code != 201:
        raise SystemExit(f"{body['name']}: {created.status_code} {created.text[:500]}")
    url = f"/bulk-actions/{created.json()['id']}"
    while True:
        found = (await client.get(url)).json()
        if found["status"] != "queued" and found["status"] != "processing":
            return time.perf_counter() - started, found
        await asyncio.sleep(0.05)


async def _download(client: httpx.AsyncClient, url: str) -> tuple[int, float]:
    started = time.perf_counter()
    size = 0
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            size += len(chunk)
    return size, time.perf_counter() - started


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.contacts))
