"""Embedded PostgreSQL and Tansu of a benchmark's own, in a temporary directory."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from dripline.infra import EmbeddedBroker, EmbeddedPostgres, free_port
from shared.db.migrate import apply_migrations
from shared.db.pool import connect
from shared.messaging.kafka import ensure_topics


@dataclass(frozen=True)
class BenchInfra:
    dsn: str  # a migrated database
    bootstrap: str
    topic_prefix: str  # its topics exist


@contextlib.asynccontextmanager
async def embedded() -> AsyncIterator[BenchInfra]:
    state = Path(tempfile.mkdtemp(prefix="dripline-bench-"))
    postgres = EmbeddedPostgres(state / "postgres", free_port(), "postgres", durable=False)
    broker = EmbeddedBroker(state / "kafka", free_port())
    postgres.start()
    broker.start()
    try:
        admin = await connect(postgres.dsn("postgres"))
        await admin.execute("CREATE DATABASE bench")
        await admin.close()
        dsn = postgres.dsn("bench")
        connection = await connect(dsn)
        try:
            await apply_migrations(connection)
        finally:
            await connection.close()
        prefix = f"bench{uuid.uuid4().hex[:6]}."
        await ensure_topics(broker.bootstrap, prefix)
        yield BenchInfra(dsn, broker.bootstrap, prefix)
    finally:
        broker.stop()
        postgres.stop()
        shutil.rmtree(state, ignore_errors=True)
