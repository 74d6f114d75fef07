"""`dripline run` as a newcomer uses it: embedded infrastructure, all four services, a demo key;
Ctrl-C stops everything and leaves no process behind; a second run keeps the data."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from dripline.infra import EmbeddedBroker, EmbeddedPostgres, free_port, port_open
from shared.settings import Settings
from tests.support import REPO

KEY = re.compile(r"API key:\s+(dl_\S+)")
ORG = re.compile(r"Org:\s+([0-9a-f-]{36})")


@pytest.fixture
def run_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPLINE_")}
    env.update(
        DRIPLINE_STATE_DIR=str(tmp_path / "state"),
        DRIPLINE_EMBEDDED_POSTGRES_PORT=str(free_port()),
        DRIPLINE_EMBEDDED_KAFKA_PORT=str(free_port()),
        DRIPLINE_API_PORT=str(free_port()),
        DRIPLINE_SCHEDULER_PORT=str(free_port()),
        DRIPLINE_SENDER_PORT=str(free_port()),
        DRIPLINE_STATS_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    yield env
    # Whatever happened, leave nothing running.
    state = Path(env["DRIPLINE_STATE_DIR"])
    EmbeddedBroker(state / "kafka", int(env["DRIPLINE_EMBEDDED_KAFKA_PORT"])).stop()
    EmbeddedPostgres(state / "postgres", int(env["DRIPLINE_EMBEDDED_POSTGRES_PORT"])).stop()


def start(env: dict[str, str]) -> tuple[subprocess.Popen[str], str, float, list[str]]:
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "dripline", "run"], cwd=REPO, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        match = KEY.search(line)
        if match:
            return process, match.group(1), time.monotonic() - started, lines
        if time.monotonic() - started > 120:
            break
    process.kill()
    raise AssertionError("no API key printed:\n" + "".join(lines[-60:]))


def interrupt(process: subprocess.Popen[str], lines: list[str]) -> None:
    process.send_signal(signal.SIGINT)
    assert process.stdout is not None
    lines.extend(process.stdout)
    assert process.wait(60) == 0, "".join(lines[-60:])


def nothing_left(env: dict[str, str], lines: list[str]) -> None:
    state = Path(env["DRIPLINE_STATE_DIR"])
    output = "".join(lines[-30:])
    for name in ("API", "SCHEDULER", "SENDER", "STATS", "EMBEDDED_KAFKA"):
        port = int(env[f"DRIPLINE_{name}_PORT"])
        assert not port_open("127.0.0.1", port), f"{name} still listens on {port}\n{output}"
    postgres = EmbeddedPostgres(state / "postgres", int(env["DRIPLINE_EMBEDDED_POSTGRES_PORT"]))
    assert not postgres.is_running(), output + postgres.log_file.read_text()[-3000:]
    assert EmbeddedBroker(state / "kafka", int(env["DRIPLINE_EMBEDDED_KAFKA_PORT"])).pid() is None


def secured(env: dict[str, str]) -> None:
    """The database of `dripline run` keeps its data through a power cut and lets no one in
    without the password; its secrets are its owner's alone."""
    state = Path(env["DRIPLINE_STATE_DIR"])
    port = int(env["DRIPLINE_EMBEDDED_POSTGRES_PORT"])
    for secret in (state / "postgres" / "password", state / "session.key"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret

    async def check() -> None:
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/dripline")
        settings = Settings(state_dir=state, embedded_postgres_port=port)
        connection = await asyncpg.connect(settings.dsn)
        try:
            for name in ("fsync", "synchronous_commit", "full_page_writes"):
                assert await connection.fetchval(f"SHOW {name}") == "on", name
        finally:
            await connection.close()

    asyncio.run(check())


def test_run_serves_stops_cleanly_and_keeps_data(run_env: dict[str, str]) -> None:
    api = f"http://127.0.0.1:{run_env['DRIPLINE_API_PORT']}"
    process, key, startup_s, lines = start(run_env)
    print(f"first start-up (initdb included): {startup_s:.1f}s")
    secured(run_env)
    [organization] = [m.group(1) for line in lines if (m := ORG.search(line))]
    headers = {"Authorization": f"Bearer {key}", "X-Organization-Id": organization}
    try:
        with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
            [campaign] = client.get("/campaign-flows").json()["items"]
            assert campaign["name"] == "Demo campaign"  # seeded, ready to launch
            assert campaign["display_status"] == "Ready"
            assert len(client.get("/telegram-accounts").json()) == 2
            launched = client.post(f"/campaign-flows/{campaign['id']}/launch")
            assert launched.status_code == 200, launched.text
            assert launched.json()["status"] == "active"
            # The newcomer watches the executions move through the flow.
            deadline = time.monotonic() + 60
            moved = 0
            while moved < 5 and time.monotonic() < deadline:
                time.sleep(0.5)
                page = client.get(
                    f"/campaign-flows/{campaign['id']}/contacts",
                    params={"status": "waiting", "limit": 500},
                ).json()
                moved = len(page["items"])
            assert moved >= 5, "the demo campaign is not progressing"
    finally:
        interrupt(process, lines)
    nothing_left(run_env, lines)

    process, key, startup_s, lines = start(run_env)
    print(f"second start-up: {startup_s:.1f}s")
    try:
        headers["Authorization"] = f"Bearer {key}"
        with httpx.Client(base_url=api, headers=headers) as client:
            again = client.get("/campaign-flows").json()["items"]
        assert [c["id"] for c in again] == [campaign["id"]]
        assert again[0]["status"] in ("active", "completed")
    finally:
        interrupt(process, lines)
    nothing_left(run_env, lines)
