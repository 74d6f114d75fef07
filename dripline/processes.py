"""The four services as child processes: what runs each, where it listens, how it is configured.

`dripline run` (the supervisor), the tests and the benchmarks all start services through this
module, so a service is started the same way everywhere: `python -m dripline <name>` with its
settings in `DRIPLINE_*` environment variables.

The test suite starts the four services a few hundred times, and a new interpreter spends about
a second of CPU importing FastAPI, faststream, aiokafka and Telethon before it does anything:
on two cores that was a third of `make test`. `use_preforked_services()` (called by the tests'
conftest) starts them instead as children of one forkserver that imported every service once;
each child then runs exactly what `python -m dripline <name>` runs (`cli.run_service`) with the
same environment, in its own session, its output in its log file, and is stopped, killed and
paused by signals the same way. `dripline run` keeps real interpreters.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.context
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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


_preforked: multiprocessing.context.ForkServerContext | None = None
_run_service: Callable[[str], None] | None = None


def use_preforked_services(run_service: Callable[[str], None]) -> None:
    """From now on, `ServiceProcess.start` forks services from a forkserver that has imported
    them, instead of starting an interpreter for each (see the module's docstring). The caller
    passes what `python -m dripline <name>` runs (`dripline.cli.run_service`: the command line
    sits above this module)."""
    global _preforked, _run_service
    if _preforked is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([run_service.__module__, *SERVICES.values()])
        _preforked, _run_service = context, run_service


def _run_forked(
    run_service: Callable[[str], None], name: str, env: dict[str, str], log_path: str, cwd: str
) -> None:
    """In the forkserver's child: become what `python -m dripline <name>` would be."""
    from shared.settings import get_settings

    os.setsid()  # as start_new_session: a signal to the test's group does not reach it
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    get_settings.cache_clear()  # nothing read the settings in the forkserver; be sure
    run_service(name)


@dataclass
class _ForkedChild:
    """The part of `subprocess.Popen` the callers use, over a forkserver's child."""

    child: multiprocessing.process.BaseProcess

    @property
    def pid(self) -> int:
        assert self.child.pid is not None
        return self.child.pid

    @property
    def returncode(self) -> int | None:
        return self.child.exitcode

    def poll(self) -> int | None:
        return self.child.exitcode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def kill(self) -> None:
        self.child.kill()

    def wait(self, timeout: float | None = None) -> int:
        self.child.join(timeout)
        if self.child.exitcode is None:
            raise subprocess.TimeoutExpired(f"dripline service {self.pid}", timeout or 0)
        return self.child.exitcode


@dataclass
class ServiceProcess:
    """One service as `python -m dripline <name>`, its output kept in a log file."""

    name: str
    settings: Settings
    cwd: Path = CHECKOUT
    log_path: Path = field(init=False)
    process: subprocess.Popen[bytes] | _ForkedChild | None = field(init=False, default=None)

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
        if _preforked is not None:
            service_command(self.name)  # the same refusal of an unknown name
            child = _preforked.Process(
                target=_run_forked,
                args=(_run_service, self.name, env, str(self.log_path), str(self.cwd)),
                name=f"dripline-{self.name}",
            )
            child.start()
            self.process = _ForkedChild(child)
            return
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
        self.ask_to_stop()
        return self.wait_stopped()

    def ask_to_stop(self) -> None:
        """SIGTERM without waiting (`wait_stopped` waits): several stop side by side."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self) -> int:
        """The exit code once stopped; a service still running after 30 s is killed."""
        if self.process is None:
            return 0
        code = self.process.poll()
        if code is not None:
            return code
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def stop_all(processes: dict[str, ServiceProcess]) -> dict[str, int]:
    """Stop them all at once (a stack's shutdown takes as long as its slowest service, not their
    sum) and answer each one's exit code."""
    for process in processes.values():
        process.ask_to_stop()
    return {name: process.wait_stopped() for name, process in processes.items()}
