"""The embedded PostgreSQL of `dripline run`: durable and password-protected by default,
fast (durability off) only when asked; and the session key kept in a file of its own."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from dripline.infra import (
    EmbeddedPostgres,
    ephemeral_ports,
    free_port,
    hba_trusts,
    hba_without_trust,
)
from dripline.supervisor import embedded_parts, ensure_session_key, infra_status
from shared.crypto import SessionCipher
from shared.settings import Settings
from tests.support import REPO

DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


@pytest.fixture
def stopped() -> Iterator[list[EmbeddedPostgres]]:
    """Servers a test started; stopped whatever happens."""
    servers: list[EmbeddedPostgres] = []
    yield servers
    for server in servers:
        server.stop()


async def durability(dsn: str) -> dict[str, str]:
    connection = await asyncpg.connect(dsn)
    try:
        return {name: await connection.fetchval(f"SHOW {name}") for name in DURABILITY}
    finally:
        await connection.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_default_server_is_durable_and_wants_its_password(
    tmp_path: Path, stopped: list[EmbeddedPostgres]
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres", free_port())
    stopped.append(postgres)
    assert postgres.start()

    bare = f"postgresql://postgres@127.0.0.1:{postgres.port}/dripline"
    for wrong in (bare, f"postgresql://postgres:guess@127.0.0.1:{postgres.port}/dripline"):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(wrong)
    assert await durability(postgres.dsn()) == dict.fromkeys(DURABILITY, "on")
    password = postgres.password_file.read_text().strip()
    assert len(password) >= 32
    assert mode(postgres.password_file) == 0o600
    assert password in postgres.dsn()


async def test_durability_is_off_only_when_asked(
    tmp_path: Path, stopped: list[EmbeddedPostgres]
) -> None:
    postgres = EmbeddedPostgres(tmp_path / "postgres", free_port(), durable=False)
    stopped.append(postgres)
    postgres.start()
    assert await durability(postgres.dsn()) == dict.fromkeys(DURABILITY, "off")
    with pytest.raises(asyncpg.InvalidPasswordError):  # fast, but still not open to anyone
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/dripline")


async def test_a_state_directory_made_with_trust_auth_gets_a_password(
    tmp_path: Path, stopped: list[EmbeddedPostgres]
) -> None:
    """What `dripline run` left behind before: initdb --auth=trust, no password anywhere."""
    postgres = EmbeddedPostgres(tmp_path / "postgres", free_port(), durable=False)
    stopped.append(postgres)
    postgres.data_dir.mkdir(parents=True)
    postgres._prepare_permissions()
    postgres._run(
        postgres._bin("initdb"), "-D", str(postgres.data_dir), "--auth=trust",
        "--encoding=utf8", "-U", "postgres", "--no-sync",
    )  # fmt: skip
    assert not postgres.password_file.exists()

    postgres.start()
    assert mode(postgres.password_file) == 0o600
    hba = (postgres.data_dir / "pg_hba.conf").read_text()
    rules = [line for line in hba.splitlines() if line.strip() and not line.startswith("#")]
    assert rules
    assert all(line.split()[-1] == "scram-sha-256" for line in rules)
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{postgres.port}/dripline")
    await durability(postgres.dsn())

    # Once migrated, a restart finds the same password.
    postgres.stop()
    assert postgres.start()
    await durability(postgres.dsn())


def test_the_commands_find_the_password_as_the_services_do(
    tmp_path: Path, stopped: list[EmbeddedPostgres]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRIPLINE_")}
    env.update(
        DRIPLINE_STATE_DIR=str(tmp_path / "state"),
        DRIPLINE_EMBEDDED_POSTGRES_PORT=str(free_port()),
        DRIPLINE_EMBEDDED_POSTGRES_DURABLE="false",
    )
    settings = Settings(
        state_dir=tmp_path / "state",
        embedded_postgres_port=int(env["DRIPLINE_EMBEDDED_POSTGRES_PORT"]),
        embedded_postgres_durable=False,
    )
    postgres, _ = embedded_parts(settings)
    stopped.append(postgres)
    postgres.start()
    password = postgres.password_file.read_text().strip()
    assert settings.dsn == postgres.dsn()
    assert password not in infra_status(settings)  # printed on a terminal: never the password

    migrated = subprocess.run(
        [sys.executable, "-m", "dripline", "migrate"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    assert "migrated: 0001_" in migrated.stdout


def test_the_session_key_comes_from_the_file_the_settings_name(tmp_path: Path) -> None:
    key = SessionCipher.new_key()
    path = tmp_path / "secrets" / "session.key"
    path.parent.mkdir()
    path.write_text(key + "\n")
    settings = Settings(session_key_file=path)
    assert settings.session_key is not None
    assert settings.session_key.get_secret_value() == key
    # The key itself, when given, wins over a file.
    other = SessionCipher.new_key()
    given = Settings(session_key=other, session_key_file=path)
    assert given.session_key is not None
    assert given.session_key.get_secret_value() == other


def test_an_empty_session_key_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "session.key"
    path.write_text("\n")
    with pytest.raises(ValueError, match=r"session\.key is empty"):
        Settings(session_key_file=path)


def test_run_creates_the_key_file_the_settings_name_and_passes_only_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # ensure_session_key sets the variable for the children it will start; set it here first
    # so that monkeypatch removes it again after the test.
    for name in ("DRIPLINE_SESSION_KEY", "DRIPLINE_SESSION_KEY_FILE"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    elsewhere = tmp_path / "secrets" / "session.key"
    settings = Settings(state_dir=tmp_path / "state", session_key_file=elsewhere)
    ensure_session_key(settings)
    assert mode(elsewhere) == 0o600
    assert not (tmp_path / "state" / "session.key").exists()
    assert os.environ["DRIPLINE_SESSION_KEY_FILE"] == str(elsewhere.resolve())
    assert "DRIPLINE_SESSION_KEY" not in os.environ  # the children read the file
    child = Settings()
    assert child.session_key is not None
    assert child.session_key.get_secret_value() == elsewhere.read_text().strip()

    # Without a setting, the default file lives in the state directory.
    monkeypatch.delenv("DRIPLINE_SESSION_KEY_FILE")
    ensure_session_key(Settings(state_dir=tmp_path / "state"))
    default = tmp_path / "state" / "session.key"
    assert mode(default) == 0o600
    assert os.environ["DRIPLINE_SESSION_KEY_FILE"] == str(default.resolve())
    assert default.read_text() != elsewhere.read_text()


def test_only_the_trust_rules_change() -> None:
    hba = (
        '# METHOD can be "trust", "reject", "md5"\n'
        "\n"
        "local   all             all                                     trust\n"
        "host    all             all             127.0.0.1/32            trust\n"
        "host    all             all             ::1/128                 trust  # was\n"
        "host    replication     all             10.0.0.0/8              scram-sha-256\n"
    )
    assert hba_trusts(hba)
    secured = hba_without_trust(hba)
    assert not hba_trusts(secured)
    assert secured.splitlines()[0] == hba.splitlines()[0]  # comments stay as they were
    assert secured.count("scram-sha-256") == 4
    assert secured.endswith("10.0.0.0/8              scram-sha-256\n")


def test_a_printed_dsn_hides_the_password(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    settings.embedded_postgres_password_file.parent.mkdir()
    settings.embedded_postgres_password_file.write_text("s3cret/+\n")
    assert settings.dsn.startswith("postgresql://postgres:s3cret%2F%2B@127.0.0.1:")
    assert settings.dsn_for_display.startswith("postgresql://postgres:***@127.0.0.1:")
    external = Settings(database_url="postgresql://app:pw@db:5432/x")
    assert external.dsn_for_display == "postgresql://app:***@db:5432/x"


def test_a_free_port_is_outside_the_range_of_outgoing_connections() -> None:
    ports = {free_port() for _ in range(50)}
    assert all(p not in ephemeral_ports() for p in ports)
    assert len(ports) > 40  # random, so parallel callers rarely choose the same
