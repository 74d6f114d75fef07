"""Session infrastructure and per-test isolation.

By default the session starts an embedded PostgreSQL and a Tansu broker on free ports in a
temporary directory. DRIPLINE_TEST_DATABASE_URL (a database on the server to administer from)
and DRIPLINE_TEST_KAFKA_BOOTSTRAP name external servers instead; DRIPLINE_TEST_CONTAINERS=1
starts both with testcontainers (needs a Docker engine, see tests/containers.py).

Each test gets its own database, cloned from a migrated template, and its own topic prefix, so
tests never see each other's rows or messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dripline.cli import run_service
from dripline.infra import EmbeddedBroker, EmbeddedPostgres, free_port
from dripline.processes import use_preforked_services
from shared.db.migrate import apply_migrations
from shared.db.pool import connect, create_pool
from shared.messaging.kafka import ensure_topics
from shared.settings import Settings
from tests.support import Infra, make_settings, new_ports

TEMPLATE = f"dripline_template_{os.getpid()}"


def pytest_configure(config: pytest.Config) -> None:
    # The services of the live-stack tests are forked from one process that imported them
    # (dripline/processes.py says why): the same code, without an interpreter's start each time.
    use_preforked_services(run_service)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    if os.environ.get("DRIPLINE_TEST_CONTAINERS") == "1":
        from tests.containers import container_infra

        with container_infra() as started:
            yield started
        return
    state = Path(tempfile.mkdtemp(prefix="dripline-tests-"))
    started_parts: list[EmbeddedPostgres | EmbeddedBroker] = []
    try:
        admin_dsn = os.environ.get("DRIPLINE_TEST_DATABASE_URL")
        if admin_dsn is None:
            postgres = EmbeddedPostgres(state / "postgres", free_port(), "postgres", durable=False)
            postgres.start()
            started_parts.append(postgres)
            admin_dsn = postgres.dsn("postgres")
        bootstrap = os.environ.get("DRIPLINE_TEST_KAFKA_BOOTSTRAP")
        if bootstrap is None:
            broker = EmbeddedBroker(state / "kafka", free_port())
            broker.start()
            started_parts.append(broker)
            bootstrap = broker.bootstrap
        yield Infra(admin_dsn, bootstrap)
    finally:
        for part in reversed(started_parts):
            part.stop()
        shutil.rmtree(state, ignore_errors=True)


async def _admin(infra: Infra) -> asyncpg.Connection[Any]:
    return await connect(infra.admin_dsn)


@pytest.fixture(scope="session")
def template_database(infra: Infra) -> Iterator[str]:
    async def create() -> None:
        admin = await _admin(infra)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
        finally:
            await admin.close()
        connection = await connect(infra.dsn(TEMPLATE))
        try:
            await apply_migrations(connection)
        finally:
            await connection.close()

    async def drop() -> None:
        admin = await _admin(infra)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    yield TEMPLATE
    asyncio.run(drop())


@contextlib.asynccontextmanager
async def _scratch_database(infra: Infra, template: str | None) -> AsyncIterator[str]:
    name = f"dripline_test_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    admin = await _admin(infra)
    await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    try:
        yield infra.dsn(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def empty_database(infra: Infra) -> AsyncIterator[str]:
    """A database with nothing in it (for migration tests); yields its URL."""
    async with _scratch_database(infra, None) as dsn:
        yield dsn


@pytest.fixture
async def database(infra: Infra, template_database: str) -> AsyncIterator[str]:
    """A migrated database of this test's own, cloned from the template; yields its URL."""
    async with _scratch_database(infra, template_database) as dsn:
        yield dsn


@pytest.fixture
async def pool(database: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    created = await create_pool(database, min_size=1, max_size=5)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def settings(infra: Infra, database: str, request: pytest.FixtureRequest) -> Settings:
    """Settings naming this test's database, its own topic prefix (topics created) and ports.
    A test may mark itself `@pytest.mark.settings(name=value)` to change some."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    await ensure_topics(infra.bootstrap, prefix)
    marker = request.node.get_closest_marker("settings")
    overrides = marker.kwargs if marker else {}
    return new_ports(make_settings(database, infra.bootstrap, prefix, **overrides))
