"""Chaos: a campaign of thousands of two-step sends through the real services while every part
of Dripline is killed, paused or loses its data (issue 13, item 11).

Its own embedded PostgreSQL and Tansu (they are killed too), all four services as processes
(two senders), and a fault plan drawn from a seed (DRIPLINE_CHAOS_SEED, printed): kill -9 of
each service at random moments, more than once; SIGSTOP of a sender past its lease; SIGSTOP of
the outbox relay's leader past its lease; kill -9 of PostgreSQL; kill -9 of the broker (which
keeps messages in memory: everything on it is lost). The run must end with every execution
final, each contact sent each message exactly once (the simulator's record equals ours one to
one), and the statistics equal to the recount, with no manual repair.

Run with `make chaos` (pytest -m chaos); not part of `make test`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest

from dripline.infra import EmbeddedBroker, EmbeddedPostgres, free_port
from dripline.processes import ServiceProcess
from services.api.accounts import create_user_with_key
from services.stats.verify import settled_drift
from shared.db.migrate import apply_migrations
from shared.db.pool import connect
from shared.messaging.kafka import ensure_topics
from shared.settings import Settings
from tests.builders import TWO_SENDS
from tests.support import make_settings, new_ports

pytestmark = pytest.mark.chaos

# Ten campaigns, each on its own paced account, so that sends are in flight for the whole plan.
CONTACTS_PER_CAMPAIGN = 200  # an account's whole daily budget of new peers
CAMPAIGNS = 10
LEASE_S = 5.0
RELAY_LEASE_S = 5.0
FINISH_TIMEOUT_S = 900


@dataclass
class Cluster:
    """The servers and the services, each of which the plan may kill, pause and restart."""

    root: Path
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    settings: Settings
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    faults: Counter[str] = field(default_factory=Counter)

    async def restart_broker(self) -> None:
        self.broker.start()
        # `dripline infra up` after a lost broker: the topics are created again.
        await ensure_topics(self.settings.bootstrap_servers, self.settings.topic_prefix)

    def kill_postgres(self) -> None:
        pid = int((self.postgres.data_dir / "postmaster.pid").read_text().split()[0])
        # The postmaster and its backends: a server crash, not a shutdown.
        children = subprocess.run(
            ["pgrep", "-P", str(pid)], capture_output=True, text=True
        ).stdout.split()
        for target in [pid, *map(int, children)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)

    def kill_broker(self) -> None:
        pid = self.broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _alive(pid):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)

    async def relay_leader(self) -> str | None:
        """The service whose outbox relay publishes now (its leader gauge reads 1)."""
        async with httpx.AsyncClient(timeout=2) as client:
            for name, process in self.services.items():
                with contextlib.suppress(httpx.HTTPError):
                    text = (await client.get(f"{process.url}/metrics")).text
                    for line in text.splitlines():
                        if line.startswith("dripline_outbox_relay_leader ") and line.endswith(
                            " 1.0"
                        ):
                            return name
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="dripline-chaos-"))
    postgres = EmbeddedPostgres(root / "postgres", free_port(), "dripline")
    broker = EmbeddedBroker(root / "kafka", free_port())
    postgres.start()
    broker.start()
    wanted = {
        "lease_s": LEASE_S,
        "relay_lease_s": RELAY_LEASE_S,
        "stats_reconcile_interval_s": 10.0,
        "stats_reconcile_settle_s": 3.0,
        "command_recovery_after_s": 10.0,
        "db_pool_max": 8,
    }
    known = {k: v for k, v in wanted.items() if k in Settings.model_fields}
    settings = new_ports(
        make_settings(postgres.dsn(), broker.bootstrap, f"chaos{uuid.uuid4().hex[:6]}.", **known)
    )
    connection = await connect(postgres.dsn())
    try:
        await apply_migrations(connection)
    finally:
        await connection.close()
    await ensure_topics(broker.bootstrap, settings.topic_prefix)
    made = Cluster(root, postgres, broker, settings)
    second_sender = settings.model_copy(update={"sender_port": free_port()})
    made.services = {
        "api": ServiceProcess("api", settings),
        "scheduler": ServiceProcess("scheduler", settings),
        "sender": ServiceProcess("sender", settings),
        "sender-2": ServiceProcess("sender", second_sender),
        "stats": ServiceProcess("stats", settings),
    }
    try:
        for process in made.services.values():
            process.start()
        for process in made.services.values():
            await process.wait_healthy(120)
        yield made
    finally:
        hung = []
        for name, process in made.services.items():
            if process.process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGCONT)  # a paused one must hear SIGTERM
                try:
                    process.stop()
                except subprocess.TimeoutExpired:
                    hung.append(f"{name}:\n{process.output()[-3000:]}")
        broker.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)
    assert not hung, "services that did not stop on SIGTERM:\n" + "\n".join(hung)


async def launch_workload(cluster: Cluster) -> list[str]:
    """Campaigns, each on its own simulated account, each contact sent two messages."""
    pool = await asyncpg.create_pool(cluster.postgres.dsn(), min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection:
            issued = await create_user_with_key(connection, "chaos@example.com")
        campaigns = []
        async with httpx.AsyncClient(
            base_url=cluster.services["api"].url,
            headers={"Authorization": f"Bearer {issued.plaintext}"},
            timeout=60,
        ) as api:
            for n in range(CAMPAIGNS):
                account = await api.post(
                    "/telegram-accounts",
                    json={
                        "display_name": f"chaos {n}",
                        "daily_quota": CONTACTS_PER_CAMPAIGN,
                        "warm": True,
                        # Paced, so that the faults land while sends are in flight.
                        "pacing": {"min_gap_s": 0.04, "jitter_s": 0},
                    },
                )
                assert account.status_code == 201, account.text
                contact_ids = [
                    str(row["id"])
                    for row in await pool.fetch(
                        "INSERT INTO contacts (owner_user_id, telegram_username, first_name)"
                        " SELECT $1, 'chaos' || $2 || 'p' || i, 'P' || i"
                        " FROM generate_series(1, $3) AS i RETURNING id",
                        issued.user_id,
                        str(n),
                        CONTACTS_PER_CAMPAIGN,
                    )
                ]
                created = await api.post(
                    "/campaign-flows",
                    json={
                        "name": f"chaos {n}",
                        "telegram_account_id": account.json()["id"],
                        "flow": TWO_SENDS,
                    },
                )
                assert created.status_code == 201, created.text
                campaign = created.json()["id"]
                added = await api.post(
                    f"/campaign-flows/{campaign}/contacts", json={"contact_ids": contact_ids}
                )
                assert added.status_code == 200, added.text
                launched = await api.post(f"/campaign-flows/{campaign}/launch")
                assert launched.status_code in (200, 202), launched.text
                campaigns.append(campaign)
        return campaigns
    finally:
        await pool.close()


async def sends_so_far(cluster: Cluster) -> int:
    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncio.TimeoutError):
        connection = await connect(cluster.postgres.dsn())
        try:
            return int(await connection.fetchval("SELECT count(*) FROM simulator_messages"))
        finally:
            await connection.close()
    return -1


async def run_fault(cluster: Cluster, fault: str, rng: random.Random) -> None:
    services = cluster.services
    if fault.startswith("kill:") and fault.removeprefix("kill:") in services:
        name = fault.removeprefix("kill:")
        services[name].kill()
        await asyncio.sleep(rng.uniform(0.2, 2.0))
        services[name].start()
        await services[name].wait_healthy(120)
    elif fault == "stop-sender":
        name = rng.choice(["sender", "sender-2"])
        process = services[name].process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(LEASE_S * 2 + 2)  # past its lease and the group's session
        process.send_signal(signal.SIGCONT)
    elif fault == "stop-relay-leader":
        leader = await cluster.relay_leader()
        if leader is None:  # between leaders: try again later
            return
        cluster.faults[f"stop-relay-leader:{leader}"] += 1
        process = services[leader].process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(RELAY_LEASE_S * 3)
        process.send_signal(signal.SIGCONT)
    elif fault == "kill:postgres":
        cluster.kill_postgres()
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        cluster.postgres.start()
    elif fault == "kill:broker":
        cluster.kill_broker()
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        await cluster.restart_broker()
    else:  # pragma: no cover - the plan names only these
        raise ValueError(fault)
    cluster.faults[fault] += 1


def fault_plan(rng: random.Random) -> list[str]:
    kills = [f"kill:{name}" for name in ("api", "scheduler", "sender", "sender-2", "stats")]
    plan = kills * 2 + ["stop-sender", "stop-relay-leader", "kill:postgres", "kill:broker"]
    rng.shuffle(plan)
    return plan


async def test_chaos_loses_and_duplicates_nothing(cluster: Cluster) -> None:
    seed = int(os.environ.get("DRIPLINE_CHAOS_SEED", random.randrange(1_000_000)))
    print(f"chaos seed {seed} (DRIPLINE_CHAOS_SEED={seed} repeats this plan)", flush=True)
    rng = random.Random(seed)
    started = time.monotonic()
    campaigns = await launch_workload(cluster)
    expected = CAMPAIGNS * CONTACTS_PER_CAMPAIGN * 2

    for fault in fault_plan(rng):
        await asyncio.sleep(rng.uniform(1.0, 4.0))
        print(
            f"{time.monotonic() - started:6.1f}s  {await sends_so_far(cluster):5d} sent  {fault}",
            flush=True,
        )
        await run_fault(cluster, fault, rng)

    pool = await asyncpg.create_pool(cluster.postgres.dsn(), min_size=1, max_size=2)
    try:
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while True:
            unfinished = await pool.fetchval(
                "SELECT count(*) FROM executions WHERE status NOT IN ('completed', 'failed',"
                " 'cancelled')"
            )
            if unfinished == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        statuses: dict[str, int] = {
            row["status"]: row["count"]
            for row in await pool.fetch("SELECT status, count(*) FROM executions GROUP BY status")
        }
        assert statuses == {"completed": CAMPAIGNS * CONTACTS_PER_CAMPAIGN}, (
            statuses,
            cluster.faults,
        )

        # The simulator's record equals ours one to one: each (account, random_id) once, each
        # contact sent each message once, and every message we recorded as sent is one it holds.
        duplicates = await pool.fetchval(
            "SELECT count(*) FROM (SELECT peer, body FROM simulator_messages"
            " GROUP BY account_id, peer, body HAVING count(*) > 1) AS d"
        )
        delivered = await pool.fetchval("SELECT count(*) FROM simulator_messages")
        ours = await pool.fetchval(
            "SELECT count(*) FROM messages WHERE direction = 'outgoing'"
            " AND status IN ('sent', 'delivered', 'read')"
        )
        unmatched = await pool.fetchval(
            "SELECT count(*) FROM messages m WHERE m.direction = 'outgoing' AND NOT EXISTS"
            " (SELECT 1 FROM simulator_messages s WHERE s.account_id = m.telegram_account_id"
            "  AND s.random_id = m.random_id)"
        )
        lost = expected - delivered
        async with pool.acquire() as connection:
            drift = await settled_drift(connection, settle_s=60)
        print(
            f"chaos figures: seed {seed}, faults {dict(cluster.faults)}, sends {delivered}/"
            f"{expected} (ours {ours}), duplicates {duplicates}, lost {lost}, unmatched"
            f" {unmatched}, drift {len(drift)}, {time.monotonic() - started:.0f}s"
        )
        assert duplicates == 0
        assert lost == 0
        assert ours == delivered == expected
        assert unmatched == 0
        assert not drift, "\n".join(str(d) for d in drift)
        assert len(campaigns) == CAMPAIGNS
    finally:
        await pool.close()
