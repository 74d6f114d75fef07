"""The API under concurrent load: a mix of reads and writes from many clients at once.

    .venv/bin/python -m bench.api_load [--seconds 20] [--clients 20 300] [--max-concurrent N]
                                       [--api-processes N]             (or: make bench)

It starts its own embedded PostgreSQL and Tansu and the real api process (its own process, as
deployed), seeds an organization's worth of contacts and campaigns, and runs, for each client
count, that many concurrent clients for --seconds, each sending the next request as soon as it
has its answer. The mix (issue 17, item 6): list contacts 40%, read a contact 30%, create a
contact 15%, a campaign's statistics 15%. It reports requests served per second, their p50 and
p99, and the requests shed (503 overloaded, with how fast they were turned away, and their share
of all answers). A shed client waits the Retry-After it was given before its next request.
`--max-concurrent` sets the api's admission limit (default: the setting's); a huge one measures
the API without shedding. What is measured is one api process as `dripline api` runs it (uvicorn,
httptools, uvloop) unless `--api-processes N` starts N of them (N instances, as replicas behind a
load balancer; each client keeps to one, round robin); the report names the configuration.
Targets: at 20 clients ≥ 534 requests/s (3 times the 178/s an independent probe measured) with p99
≤ 150 ms; at 300 clients, what is beyond capacity is shed quickly instead of queueing.
The load generator runs on the same cores as the API, as the probe's did; it speaks HTTP/1.1 by
hand to cost little CPU, and reports its own event loop's lag, which every figure includes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

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
    # How late the load generator's own event loop ran a 50 ms sleep: what it adds to every
    # figure above (it runs on the same cores as the API).
    loop_lag: list[float] = field(default_factory=list)


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: the load generator runs on the same
    cores as the API, and httpx spent more CPU per request than the API at 300 clients (its own
    event loop ran a 50 ms sleep up to 2.7 s late), so it measured itself."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: Bearer {key}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str]]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        extra = "Content-Type: application/json\r\n" if body is not None else ""
        line = f"{method} {path} HTTP/1.1\r\n{self.head}{extra}"
        self.writer.write(f"{line}Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, headers

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
        self.reader = self.writer = None


async def client_loop(
    api: Connection, contacts: list[Any], campaigns: list[Any], until: float, tally: Tally
) -> None:
    try:
        while time.perf_counter() < until:
            pick = random.random()
            started = time.perf_counter()
            if pick < 0.40:
                status, headers = await api.request("GET", "/contacts?limit=50")
            elif pick < 0.70:
                status, headers = await api.request("GET", f"/contacts/{random.choice(contacts)}")
            elif pick < 0.85:
                body = {"telegram_username": f"n{random.getrandbits(60):x}"}
                status, headers = await api.request("POST", "/contacts", body)
            else:
                path = f"/campaign-flows/{random.choice(campaigns)}/statistics"
                status, headers = await api.request("GET", path)
            elapsed = time.perf_counter() - started
            if status in (200, 201):
                tally.served.append(elapsed)
            elif status == 503:
                tally.shed.append(elapsed)
                await asyncio.sleep(float(headers.get("retry-after", "1")))
            else:
                tally.other[status] = tally.other.get(status, 0) + 1
    finally:
        await api.close()


def quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(urls: list[str], key: str, clients: int, seconds: float, ids: Any) -> Tally:
    """`clients` clients for `seconds`, client i on urls[i % len(urls)]."""
    tally = Tally()
    addresses = []
    for url in urls:
        address = urlsplit(url)
        assert address.hostname is not None
        assert address.port is not None
        addresses.append((address.hostname, address.port))
    until = time.perf_counter() + seconds
    contacts, campaigns = list(ids["contacts"]), list(ids["campaigns"])
    await asyncio.gather(
        *(
            client_loop(
                Connection(*addresses[i % len(addresses)], key), contacts, campaigns, until, tally
            )
            for i in range(clients)
        ),
        lag_probe(until, tally),
    )
    return tally


async def lag_probe(until: float, tally: Tally) -> None:
    while time.perf_counter() < until:
        asked = time.perf_counter()
        await asyncio.sleep(0.05)
        tally.loop_lag.append(time.perf_counter() - asked - 0.05)


async def main(
    seconds: float, client_counts: list[int], max_concurrent: int, api_processes: int = 1
) -> None:
    async with embedded() as infra:
        connection = await connect(infra.dsn)
        issued = await create_user(connection, "load@example.com")
        ids = await connection.fetchrow(SEED, issued.user_id, 20_000, 200)
        await connection.execute("VACUUM ANALYZE")
        await connection.close()
        apis = [
            ServiceProcess(
                "api",
                Settings(
                    database_url=infra.dsn,
                    kafka_bootstrap=infra.bootstrap,
                    topic_prefix=infra.topic_prefix,
                    api_port=free_port(),
                    api_max_concurrent_requests=max_concurrent,
                ),
            )
            for _ in range(api_processes)
        ]
        urls = [api.url for api in apis]
        print(f"{api_processes} api process(es) (uvicorn, httptools, uvloop)")
        try:
            for api in apis:
                api.start()
            for api in apis:
                await api.wait_healthy()
            await run(urls, issued.plaintext, 5, 2.0, ids)  # warm up
            for clients in client_counts:
                tally = await run(urls, issued.plaintext, clients, seconds, ids)
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
                lag = quantile(tally.loop_lag, 0.99) * 1000
                print(f"      load generator's loop lag p99 {lag:.0f} ms")  # fmt: skip
                print(f"      share shed {len(tally.shed) / max(attempts, 1):.1%}"
                      f" (admission limit {max_concurrent})")  # fmt: skip
                target = THROUGHPUT_TARGET if clients <= 20 else None
                # the figures of another configuration than the deployed one are their own
                label = f"{clients} clients" + (
                    f", {api_processes} api processes" if api_processes > 1 else ""
                )
                record(Figure("api", f"{label}, served", rate, "/s", "higher", target))
                share = 100 * len(tally.shed) / max(attempts, 1)
                record(Figure("api", f"{label}, shed", share, "%", "lower"))
                p99_target = P99_TARGET_MS if clients <= 20 else None
                record(Figure("api", f"{label}, p99", p99 * 1000, "ms", "lower",
                              p99_target))  # fmt: skip
                if tally.shed:
                    record(Figure("api", f"{label}, p99 to a 503", shed_p99 * 1000,
                                  "ms", "lower", 1000.0))  # fmt: skip
        finally:
            for api in apis:
                if api.process is not None:
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
    parser.add_argument(
        "--api-processes",
        type=int,
        default=1,
        help="api processes to start (as replicas behind a load balancer); clients are spread "
        "over them round robin",
    )
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.seconds,
            arguments.clients,
            arguments.max_concurrent,
            arguments.api_processes,
        )
    )
