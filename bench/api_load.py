"""The API under concurrent load: a mix of reads and writes from many clients at once.

    .venv/bin/python -m bench.api_load [--seconds 20] [--clients 20 300]   (or: make bench)

It starts its own embedded PostgreSQL and Tansu and the real api process (its own process, as
deployed), seeds an organization's worth of contacts and campaigns, and runs, for each client
count, that many concurrent clients for --seconds, each sending the next request as soon as it
has its answer. The mix (issue 17, item 6): list contacts 40%, read a contact 30%, create a
contact 15%, a campaign's statistics 15%. It reports requests served per second, their p50 and
p99, and the requests shed (503 overloaded, with how fast they were turned away).
Targets: at 20 clients ≥ 534 requests/s (3 times the 178/s an independent probe measured) with p99
≤ 150 ms; at 300 clients, what is beyond capacity is shed quickly instead of queueing.
The load generator runs on the same cores as the API, as the probe's did.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from dataclasses import dataclass, field
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
WITH people AS (
    INSERT INTO contacts (owner_user_id, telegram_username, first_name)
    SELECT $1, 'load_' || n, 'Load' FROM generate_series(1, $2) n
    RETURNING id
), campaigns_ AS (
    INSERT INTO campaigns (created_by, name, status)
    SELECT $1, 'load ' || n, 'draft' FROM generate_series(1, $3) n
    RETURNING id
)
SELECT (SELECT array_agg(id) FROM people) AS contacts,
       (SELECT array_agg(id) FROM campaigns_) AS campaigns;
"""
THROUGHPUT_TARGET = 3 * 178.0  # requests/s at 20 clients
P99_TARGET_MS = 150.0


@dataclass
class Tally:
    served: list[float] = field(default_factory=list)
    shed: list[float] = field(default_factory=list)
    other: dict[int, int] = field(default_factory=dict)


async def client_loop(
    api: httpx.AsyncClient, contacts: list[Any], campaigns: list[Any], until: float, tally: Tally
) -> None:
    while time.perf_counter() < until:
        pick = random.random()
        started = time.perf_counter()
        if pick < 0.40:
            response = await api.get("/contacts", params={"limit": 50})
        elif pick < 0.70:
            response = await api.get(f"/contacts/{random.choice(contacts)}")
        elif pick < 0.85:
            body = {"telegram_username": f"n{random.getrandbits(60):x}"}
            response = await api.post("/contacts", json=body)
        else:
            response = await api.get(f"/campaign-flows/{random.choice(campaigns)}/statistics")
        elapsed = time.perf_counter() - started
        if response.status_code in (200, 201):
            tally.served.append(elapsed)
        elif response.status_code == 503:
            tally.shed.append(elapsed)
            await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
        else:
            tally.other[response.status_code] = tally.other.get(response.status_code, 0) + 1


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(url: str, key: str, clients: int, seconds: float, ids: Any) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits
    ) as api:
        until = time.perf_counter() + seconds
        contacts, campaigns = list(ids["contacts"]), list(ids["campaigns"])
        await asyncio.gather(
            *(client_loop(api, contacts, campaigns, until, tally) for _ in range(clients))
        )
    return tally


async def main(seconds: float, client_counts: list[int], max_concurrent: int) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        issued = await create_user(connection, "load@example.com")
        ids = await connection.fetchrow(SEED, issued.user_id, 20_000, 200)
        await connection.execute("VACUUM ANALYZE")
        await connection.close()
        settings = Settings(
            database_url=infra.dsn,
            kafka_bootstrap=infra.bootstrap,
            topic_prefix=infra.topic_prefix,
            api_port=free_port(),
            api_max_concurrent_requests=max_concurrent,
        )
        api = ServiceProcess("api", settings)
        try:
            api.start()
            await api.wait_healthy()
            await run(api.url, issued.plaintext, 5, 2.0, ids)  # warm up
            for clients in client_counts:
                tally = await run(api.url, issued.plaintext, clients, seconds, ids)
                rate = len(tally.served) / seconds
                p50, p99 = quantile(tally.served, 0.5), quantile(tally.served, 0.99)
                shed_p99 = quantile(tally.shed, 0.99)
                print(
                    f"{clients:4} clients: {rate:7,.0f} requests/s served, p50 {p50 * 1000:6.1f}"
                    f" ms, p99 {p99 * 1000:7.1f} ms; shed {len(tally.shed):,}"
                    + (f" (p99 {shed_p99 * 1000:.0f} ms to the 503)" if tally.shed else "")
                    + (f"; other answers {tally.other}" if tally.other else "")
                )
                attempts = len(tally.served) + len(tally.shed) + sum(tally.other.values())
                print(f"      share shed {len(tally.shed) / max(attempts, 1):.1%}"
                      f" (admission limit {max_concurrent})")  # fmt: skip
                target = THROUGHPUT_TARGET if clients <= 20 else None
                record(Figure("api", f"{clients} clients, served", rate, "/s", "higher", target))
                p99_target = P99_TARGET_MS if clients <= 20 else None
                record(Figure("api", f"{clients} clients, p99", p99 * 1000, "ms", "lower",
                              p99_target))  # fmt: skip
                if tally.shed:
                    record(Figure("api", f"{clients} clients, p99 to a 503", shed_p99 * 1000,
                                  "ms", "lower", 1000.0))  # fmt: skip
        finally:
            api.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[20, 300])
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=Settings().api_max_concurrent_requests,
        help="the api's admission limit (api_max_concurrent_requests); a huge one turns "
        "shedding off, to measure without it",
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.seconds, arguments.clients, arguments.max_concurrent))
