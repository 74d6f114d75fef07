"""Locking the executions a step or an answer works on: the due handler (a batch, each checked
against its event's lease), a batch of Telegram's answers and a single answer or reply. Every
row comes as an ExecutionRow (shared/db/rows.py), the shape staging.load reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from uuid import UUID

from shared.db.pool import DbConnection
from shared.db.rows import ExecutionRow
from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


async def lock(connection: DbConnection, execution_id: UUID) -> ExecutionRow | None:
    """One execution, locked, whatever its claim (for staging.load without a cache)."""
    return (await lock_many(connection, [execution_id])).get(execution_id)


async def lock_many(
    connection: DbConnection,
    execution_ids: Sequence[UUID],
    leases: Sequence[datetime | None] | None = None,
) -> dict[UUID, ExecutionRow]:
    """These executions, locked in id order, by id (for staging.load with a campaign cache).
    With `leases` (one per id: the lease its due event carries), an execution claimed again
    since is neither locked nor returned; without, every one is (an answer belongs to its
    execution whatever the claim)."""
    if leases is None:
        leases = [None] * len(execution_ids)
    rows = await connection.fetch(QUERIES["lock_executions"], list(execution_ids), list(leases))
    return {execution.id: execution for execution in map(ExecutionRow.from_row, rows)}
