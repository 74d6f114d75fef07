"""`dripline run`: embedded infrastructure, migrations, and the four services in the foreground.

Each service is a child process in its own session, so Ctrl-C reaches only this supervisor,
which then stops the services in order (SIGTERM: each finishes its in-flight batch, commits
offsets and drains its outbox) and finally stops the infrastructure it started itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from dripline.infra import EmbeddedBroker, EmbeddedPostgres, write_secret
from dripline.processes import SERVICES, service_command, service_port
from shared.crypto import SessionCipher
from shared.settings import Settings

_COLOURS = {"api": "36", "scheduler": "35", "sender": "33", "stats": "32", "dripline": "1"}
DEMO_EMAIL = "demo@dripline.local"
DEMO_FLOW = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}, got a minute?"},
        {"id": "wait", "type": "wait_for_reply", "timeout_seconds": 60},
        {"id": "thanks", "type": "send_message", "text": "Thanks for your answer!"},
        {"id": "nudge", "type": "send_message", "text": "No worries, {first_name}. Later!"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "wait"},
        {"from": "wait", "to": "thanks", "when": "replied"},
        {"from": "wait", "to": "nudge", "when": "timed_out"},
        {"from": "thanks", "to": "end"},
        {"from": "nudge", "to": "end"},
    ],
}
# A third of the demo contacts answer within a minute; everyone reads after a few seconds.
DEMO_SIMULATION = {
    "seed": 7,
    "default": {"read_after_s": 3, "reply_ratio": 0.33, "reply_after_s": 20},
}


def say(source: str, line: str) -> None:
    colour = _COLOURS.get(source, "0")
    prefix = f"{source:<9}|"
    if sys.stdout.isatty():
        prefix = f"\033[{colour}m{prefix}\033[0m"
    print(f"{prefix} {line}", flush=True)


def embedded_parts(settings: Settings) -> tuple[EmbeddedPostgres, EmbeddedBroker]:
    state = settings.state_dir.resolve()
    postgres = EmbeddedPostgres(
        settings.embedded_postgres_password_file.resolve().parent,
        settings.embedded_postgres_port,
        settings.embedded_database,
        durable=settings.embedded_postgres_durable,
    )
    return postgres, EmbeddedBroker(state / "kafka", settings.embedded_kafka_port)


def infra_up(settings: Settings) -> list[EmbeddedPostgres | EmbeddedBroker]:
    """Start what is embedded and not running; returns what this call started."""
    postgres, broker = embedded_parts(settings)
    started: list[EmbeddedPostgres | EmbeddedBroker] = []
    try:
        if settings.embedded_postgres:
            if postgres.start():
                started.append(postgres)
            durability = "" if postgres.durable else ", durability off"
            say(
                "dripline",
                f"PostgreSQL ready at {settings.dsn_for_display} (data in {postgres.data_dir}, "
                f"password in {postgres.password_file}{durability})",
            )
        if settings.embedded_kafka:
            if broker.start():
                started.append(broker)
            say("dripline", f"Tansu broker ready at {settings.bootstrap_servers}")
    except BaseException:
        for part in reversed(started):
            part.stop()
        raise
    from shared.messaging.kafka import ensure_topics

    created = asyncio.run(ensure_topics(settings.bootstrap_servers, settings.topic_prefix))
    if created:
        say("dripline", f"created {len(created)} topics")
    return started


def infra_down(settings: Settings) -> None:
    postgres, broker = embedded_parts(settings)
    if settings.embedded_kafka:
        broker.stop()
        say("dripline", "Tansu broker stopped")
    if settings.embedded_postgres:
        postgres.stop()
        say("dripline", "PostgreSQL stopped")


def infra_status(settings: Settings) -> str:
    postgres, broker = embedded_parts(settings)
    pg = (
        "external"
        if not settings.embedded_postgres
        else ("running" if postgres.is_running() else "stopped")
    )
    kafka = (
        "external"
        if not settings.embedded_kafka
        else ("running" if broker.is_running() else "stopped")
    )
    return (
        f"postgres: {pg} ({settings.dsn_for_display})\n"
        f"broker: {kafka} ({settings.bootstrap_servers})"
    )


@dataclass(frozen=True)
class Demo:
    key: str
    organization_id: str


async def _prepare(settings: Settings) -> Demo:
    """Migrate, seed the demo data once and issue a fresh demo key."""
    from dripline.admin import create_user
    from shared.db.migrate import migrate
    from shared.db.pool import connect
    from shared.db.sql import Queries

    applied = await migrate(settings.dsn)
    if applied:
        say("dripline", "migrated: " + ", ".join(f"{m.version:04d}_{m.name}" for m in applied))
    connection = await connect(settings.dsn)
    try:
        issued = await create_user(connection, DEMO_EMAIL, name="Demo", key_name="demo")
        demo = Queries.load(Path(__file__).with_name("demo.sql"))
        seeded = await connection.fetch(demo["seed"], issued.user_id, DEMO_FLOW, DEMO_SIMULATION)
        if seeded:
            await connection.execute(demo["statistics"], seeded[0]["campaign_id"])
            say(
                "dripline",
                "seeded 'Demo organization': two simulated accounts, 300 contacts "
                "and 'Demo campaign'",
            )
        organization = await connection.fetchval(demo["organization"], issued.user_id)
    finally:
        await connection.close()
    return Demo(issued.plaintext, str(organization))


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process


async def _spawn(name: str) -> Child:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        *service_command(name),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    return Child(name, process)


async def _pump(child: Child) -> None:
    assert child.process.stdout is not None
    async for raw in child.process.stdout:
        say(child.name, raw.decode(errors="replace").rstrip())


async def _wait_healthy(settings: Settings, names: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(names)
    async with httpx.AsyncClient(timeout=1.0) as client:
        while pending:
            for name in sorted(pending):
                url = f"http://{settings.http_host}:{service_port(settings, name)}/health"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        pending.discard(name)
            if time.monotonic() > deadline:
                raise TimeoutError(f"not healthy after {timeout_s:.0f}s: {', '.join(pending)}")
            await asyncio.sleep(0.2)


async def _supervise(settings: Settings, started_at: float, demo: Demo) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    children = [await _spawn(name) for name in SERVICES]
    pumps = [asyncio.create_task(_pump(child)) for child in children]
    exits: dict[asyncio.Task[int], Child] = {
        asyncio.create_task(child.process.wait()): child for child in children
    }
    stopper = asyncio.create_task(stop.wait())
    health = asyncio.create_task(_wait_healthy(settings, list(SERVICES), 120))
    exit_code = 0
    try:
        done, _ = await asyncio.wait([health, stopper, *exits], return_when=asyncio.FIRST_COMPLETED)
        if health in done:
            health.result()
            api = f"http://{settings.http_host}:{settings.api_port}"
            say("dripline", f"all four services are up in {time.monotonic() - started_at:.1f}s")
            say("dripline", f"API:      {api}   (OpenAPI at {api}/docs)")
            say("dripline", f"Org:      {demo.organization_id}   (send it as X-Organization-Id)")
            say("dripline", f"API key:  {demo.key}   (user {DEMO_EMAIL}, shown once)")
            say("dripline", "Ctrl-C stops everything.")
            done, _ = await asyncio.wait([stopper, *exits], return_when=asyncio.FIRST_COMPLETED)
        for child in (exits[task] for task in exits if task in done):
            code = child.process.returncode
            say("dripline", f"{child.name} exited with {code}; stopping the rest")
            exit_code = 1
    except TimeoutError as exc:
        say("dripline", f"{exc}; stopping")
        exit_code = 1
    finally:
        health.cancel()
        say("dripline", "stopping the services")
        for child in children:
            if child.process.returncode is None:
                child.process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await asyncio.gather(*(child.process.wait() for child in children))
        except TimeoutError:
            for child in children:
                if child.process.returncode is None:
                    say("dripline", f"{child.name} did not stop in 30s; killing it")
                    child.process.kill()
        await asyncio.gather(*pumps)
        stopper.cancel()
    return exit_code


def ensure_session_key(settings: Settings) -> None:
    """Telegram sessions are stored encrypted. Unless the key itself is configured, it lives in
    a file (DRIPLINE_SESSION_KEY_FILE, by default session.key in the state directory) that the
    first run creates, readable by its owner only. The services are told the file's name, not
    the key, so the key stays out of their environment."""
    if settings.session_key is not None:  # given, or read from an existing file
        return
    path = (settings.session_key_file or settings.state_dir / "session.key").resolve()
    if not path.exists():
        write_secret(path, SessionCipher.new_key())
        say("dripline", f"created the session encryption key {path} (back it up; README)")
    os.environ["DRIPLINE_SESSION_KEY_FILE"] = str(path)


def run_all(settings: Settings) -> int:
    from shared import logs

    logs.configure(settings.log_level)
    started_at = time.monotonic()
    ensure_session_key(settings)
    started = infra_up(settings)
    try:
        demo = asyncio.run(_prepare(settings))
        return asyncio.run(_supervise(settings, started_at, demo))
    except KeyboardInterrupt:
        return 130
    finally:
        for part in reversed(started):
            say("dripline", f"stopping {type(part).__name__}")
            part.stop()
