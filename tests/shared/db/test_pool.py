"""shared.db.pool: queries over a queue table are planned for its size at the call."""

from __future__ import annotations

from typing import Any

from shared.db.pool import DbConnection, connect, fetch_replanned
from shared.messaging.outbox import QUERIES

# 20,000 published records and a few unsent ones: the outbox while a large campaign runs.
_GROW = """
INSERT INTO outbox (topic, key, value, message_id, sent_at)
SELECT 'dripline.execution.due', NULL, convert_to(repeat('x', 300), 'UTF8'), gen_random_uuid(),
       CASE WHEN n <= 20000 THEN now() END
FROM generate_series(1, 20005) n
"""


async def _outbox_scans(connection: DbConnection) -> tuple[int, int]:
    """Sequential and index scans of the outbox this backend has not reported yet (a count
    that only grows within a transaction)."""
    row: Any = await connection.fetchrow(
        "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'outbox'"
    )
    return (row["seq_scan"], row["idx_scan"]) if row is not None else (0, 0)


async def test_a_plan_made_on_an_empty_outbox_is_not_kept_once_it_has_grown(
    database: str,
) -> None:
    connection = await connect(database)
    try:
        await connection.execute("VACUUM ANALYZE outbox")  # its statistics say: empty
        # The relay's fetch as a connection's cached statement, planned now, on the empty table.
        assert await connection.fetch(QUERIES["fetch_unsent"]) == []
        await connection.execute(_GROW)
        async with connection.transaction():
            seq_0, idx_0 = await _outbox_scans(connection)
            await connection.fetch(QUERIES["fetch_unsent"])
            seq_1, idx_1 = await _outbox_scans(connection)
            rows = await fetch_replanned(connection, QUERIES["fetch_unsent"])
            seq_2, idx_2 = await _outbox_scans(connection)
    finally:
        await connection.close()
    # The cached plan reads the whole table (this is what the relay did before);
    assert (seq_1 - seq_0, idx_1 - idx_0) == (1, 0)
    # one planned at the call walks the unsent index, and finds the same rows.
    assert len(rows) == 5
    assert (seq_2 - seq_1, idx_2 - idx_1) == (0, 1)
