"""Imports as a tracked bulk action end to end: a streamed upload, then the scheduler's batches.

    .venv/bin/python -m bench.imports [--rows 100000]

It starts its own embedded PostgreSQL and Tansu and the real api and scheduler processes,
streams a generated CSV of --rows contacts to POST /imports (generated piece by piece, never
whole in this process either), starts an import_contacts action (all at once: 1,000 rows a
transaction) and waits for it to complete. One row in fifty is a bad phone and one in fifty
repeats an earlier row, so the errors and merges are in the measurement. It prints the upload's
and the import's times and the api's and the scheduler's resident memory: after start-up, and
their peak (VmHWM) at the end, which is flat when neither holds the file or the rows.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from bench.infra import embedded
from bench.report import Figure, record
from dripline.admin import create_user
from dripline.infra import free_port
from dripline.processes import ServiceProcess
from shared.db.pool import connect
from shared.settings import Settings

PIECE_ROWS = 2000


async def csv_body(rows: int) -> AsyncIterator[bytes]:
    yield b"telegram_username,phone,first_name,last_name,tags,plan\n"
    piece: list[str] = []
    for n in range(1, rows + 1):
        if n % 50 == 0:
            piece.append(f"bad_{n},12,Bad,Phone,,\n")
        elif n % 50 == 1 and n > 50:
            piece.append(f"lead_{n - 49},,Again,,,\n")  # the same person as 49 rows before
        else:
            piece.append(f"lead_{n},+49151{n:08d},First{n},Last{n},bench;import,pro\n")
        if len(piece) == PIECE_ROWS:
            yield "".join(piece).encode()
            piece = []
    if piece:
        yield "".join(piece).encode()


def memory_kb(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (the peak since the process started), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


async def main(rows: int) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        issued = await create_user(connection, "bench@example.com")
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            api_port=free_port(),
            scheduler_port=free_port(),
            kafka_session_timeout_ms=1500,
            kafka_heartbeat_interval_ms=300,
        )
        processes = {"api": ServiceProcess("api", settings),
                     "scheduler": ServiceProcess("scheduler", settings)}  # fmt: skip
        try:
            for process in processes.values():
                process.start()
            for process in processes.values():
                await process.wait_healthy()
            pids = {name: _pid(p) for name, p in processes.items()}
            started = {name: memory_kb(pid, "VmRSS") for name, pid in pids.items()}
            async with httpx.AsyncClient(
                base_url=processes["api"].url,
                headers={"Authorization": f"Bearer {issued.plaintext}"},
                timeout=600,
            ) as api:
                upload_s, stored = await _upload(api, rows)
                import_s, done = await _import(api, stored["id"])
            peaks = {name: memory_kb(pid, "VmHWM") for name, pid in pids.items()}
            contacts = await connection.fetchval("SELECT count(*) FROM contacts")
        finally:
            for process in processes.values():
                process.stop()
            await connection.close()
    mb = {name: kb / 1024 for name, kb in peaks.items()}
    print(f"upload:  {stored['rows']:,} rows, {stored['bytes'] / 1e6:.1f} MB streamed and stored "
          f"in {upload_s:.2f} s ({stored['rows'] / upload_s:,.0f} rows/s)")  # fmt: skip
    print(f"import:  {done['processed']:,} rows in {import_s:.2f} s "
          f"({done['processed'] / import_s:,.0f} rows/s, {done['batches']} batches): "
          f"{done['success_count']:,} succeeded, {done['error_count']:,} failed; "
          f"{contacts:,} contacts")  # fmt: skip
    for name in processes:
        print(f"memory:  {name}: {started[name] / 1024:.0f} MB after start-up, "
              f"peak {mb[name]:.0f} MB")  # fmt: skip
    record(Figure("imports", f"upload {rows:,} rows", upload_s, "s", "lower"))
    record(Figure("imports", f"import {rows:,} rows", import_s, "s", "lower"))
    for name in processes:
        record(Figure("imports", f"{name} peak RSS", mb[name], "MB", "lower"))


def _pid(process: ServiceProcess) -> int:
    assert process.process is not None  # started
    return process.process.pid


async def _upload(api: httpx.AsyncClient, rows: int) -> tuple[float, Any]:
    started = time.perf_counter()
    response = await api.post(
        "/imports", content=csv_body(rows), headers={"Content-Type": "text/csv"}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"upload refused: {response.text[:500]}")
    return elapsed, response.json()


async def _import(api: httpx.AsyncClient, import_id: str) -> tuple[float, Any]:
    started = time.perf_counter()
    created = await api.post(
        "/bulk-actions",
        json={"name": "Bench import", "action": "import_contacts",
              "params": {"import_id": import_id, "tags": ["imported"]}},
    )  # fmt: skip
    if created.status_code != 201:
        raise SystemExit(f"action refused: {created.text[:500]}")
    action_id = created.json()["id"]
    while True:
        found = (await api.get(f"/bulk-actions/{action_id}")).json()
        if found["status"] in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - started
    if found["status"] != "completed":
        raise SystemExit(f"import {found['status']}: {found.get('error_message')}")
    return elapsed, found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rows))
