"""Users and their API keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from services.api import keys
from shared.db.pool import DbConnection
from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


@dataclass(frozen=True)
class IssuedKey:
    user_id: UUID
    email: str
    key_id: UUID
    plaintext: str


async def create_user_with_key(
    connection: DbConnection, email: str, *, name: str | None = None,
    key_name: str = "default",
) -> IssuedKey:  # fmt: skip
    """Create the user (or find it by e-mail) and issue a new key, returned in plain text once."""
    async with connection.transaction():
        user = await connection.fetchrow(QUERIES["upsert_user"], email, name)
        assert user is not None
        new_key = keys.generate()
        row = await connection.fetchrow(
            QUERIES["insert_api_key"], user["id"], key_name, new_key.prefix, new_key.hash
        )
        assert row is not None
    return IssuedKey(user["id"], user["email"], row["id"], new_key.plaintext)
