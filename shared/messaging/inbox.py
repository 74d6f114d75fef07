"""Idempotent consumption: a consumer applies a given message id at most once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

from shared.db.pool import DbConnection
from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


async def claim(
    connection: DbConnection, consumer: str, topic: str, message_ids: Sequence[UUID]
) -> set[UUID]:
    """Returns the ids that are new to this consumer, now recorded as applied."""
    if not message_ids:
        return set()
    rows = await connection.fetch(QUERIES["claim"], consumer, topic, list(set(message_ids)))
    return {row["message_id"] for row in rows}
