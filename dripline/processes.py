"""The four services as child processes: what runs each, where it listens, how it is configured.

`dripline run` (the supervisor), the tests and the benchmarks all start services through this
module, so a service is started the same way everywhere: `python -m dripline <name>` with its
settings in `DRIPLINE_*` environment variables.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from shared.settings import Settings

SERVICES: dict[str, str] = {
    "api": "services.api.app",
    "scheduler": "services.scheduler.app",
    "sender": "services.sender.app",
    "stats": "services.stats.app",
}

# The checkout the package runs from: a relative state directory in the settings means the same
# place for a child as for the process that started it.
CHECKOUT = Path(__file__).resolve().parent.parent


def service_port(settings: Settings, name: str) -> int:
    ports = {"api": settings.api_port, "scheduler": settings.scheduler_port,
             "sender": settings.sender_port, "stats": settings.stats_port}  # fmt: skip
    return ports[name]


def service_command(name: str) -> list[str]:
    if name not in SERVICES:
        raise ValueError(f"no service named {name!r}; there are {', '.join(SERVICES)}")
    return [sys.executable, "-m", "dripline", name]


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child's `get_settings()` equal `settings`."""
    env = {}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if value is not None:
            env[f"DRIPLINE_{name.upper()}"] = str(value)
    return env


@dataclass
class ServiceProcess:
    """One service as `python -m dripline <name>`, its output kept in a log file."""

    name: str
    settings: Settings
    cwd: Path = CHECKOUT
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix=f"dripline-{self.name}-", suffix=".log")[1])

    @property
    def port(self) -> int:
        return service_port(self.settings, self.name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, **settings_env(self.settings), "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            service_command(self.name),
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd, start_new_session=True,
        )  # fmt: skip
        log.close()

    async def wait_healthy(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=1.0) as client:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited early:\n{self.output()[-4000:]}")
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not healthy:\n{self.output()[-4000:]}")
                await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: the crash a test wants, with nothing flushed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM, the graceful path; returns the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
