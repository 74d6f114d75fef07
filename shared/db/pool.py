"""Connection pools. JSON and JSONB columns come back as Python objects."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = [
    "DbConnection",
    "PoolConnectionProxy",
    "connect",
    "create_pool",
    "execute_replanned",
    "fetch_replanned",
    "fetchrow_replanned",
]

# What a query function accepts: a plain connection or one borrowed from a pool.
DbConnection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


async def _init_connection(connection: asyncpg.Connection[Any]) -> None:
    for type_name in ("json", "jsonb"):
        await connection.set_type_codec(
            type_name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool[Any]:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


async def connect(dsn: str) -> asyncpg.Connection[Any]:
    connection = await asyncpg.connect(dsn)
    await _init_connection(connection)
    return connection


# Queries that read a queue table (the outbox) run on a plan made at the call: asyncpg prepares
# each query once per connection, and PostgreSQL then keeps one generic plan (always, for a
# query without parameters; after five calls, for one with). A plan made while the table was
# nearly empty reads it whole, since a scan of nothing costs nothing, and keeps doing so as the
# table grows, until autovacuum's next ANALYZE of it invalidates the plan, a minute or more
# later. The outbox grows from empty to hundreds of thousands of rows in that time when large
# campaigns start: the relay's fetch and the scheduler's recovery sweep took 60-100 ms each
# instead of under one (bench.engine under pg_stat_statements, auto_explain), and end-to-end
# throughput fell by a quarter as the run went on. The price is one round trip (Parse) per call;
# these queries run a few times a second at most. tests/shared/db/test_queries.py holds every
# outbox read to it.
async def fetch_replanned(connection: DbConnection, query: str, *args: Any) -> list[Any]:
    """The rows of `query`, planned now for the table sizes of now."""
    statement = await connection.prepare(query)
    return await statement.fetch(*args)


async def fetchrow_replanned(connection: DbConnection, query: str, *args: Any) -> Any:
    """The first row of `query` (None when there is none), planned now."""
    statement = await connection.prepare(query)
    return await statement.fetchrow(*args)


async def execute_replanned(connection: DbConnection, query: str, *args: Any) -> str:
    """Run `query`, planned now; its status (as `execute` returns it, "DELETE 12")."""
    statement = await connection.prepare(query)
    await statement.fetch(*args)
    status = statement.get_statusmsg()
    if status is None:  # asyncpg sets it on every completed execution
        raise RuntimeError(f"no status after running {query[:60]!r}")
    return status
