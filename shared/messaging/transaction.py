"""One unit of work: a database transaction and the outbox of the records it causes.

Everything a transaction emits is written to the outbox in that same transaction, on its
successful exit, so a state change and the events that announce it commit together or not at
all. The consumer's `HandlerContext` is this for a batch of messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.db.pool import DbConnection
from shared.domain.clock import Clock
from shared.messaging.outbox import Outbox


@dataclass
class Transaction:
    """The transaction's connection, its outbox (`outbox.emit`), and the clock."""

    connection: DbConnection
    outbox: Outbox
    clock: Clock


@asynccontextmanager
async def transaction(pool: asyncpg.Pool[Any], clock: Clock) -> AsyncIterator[Transaction]:
    """A connection from `pool` in a transaction; the outbox is written before the commit."""
    async with pool.acquire() as connection, transaction_on(connection, clock) as tx:
        yield tx


@asynccontextmanager
async def transaction_on(connection: DbConnection, clock: Clock) -> AsyncIterator[Transaction]:
    """A transaction on a connection the caller holds (for one that runs several in turn)."""
    async with connection.transaction():
        tx = Transaction(connection, Outbox(clock=clock), clock)
        yield tx
        await tx.outbox.flush(connection)
