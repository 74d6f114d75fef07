"""Administration outside the API, for `dripline admin`, the demo seed and the benchmarks.

Issuing the first key cannot go through the API (every request needs one), so the launcher
offers it as a function; callers outside the services use this rather than the API's module.
"""

from __future__ import annotations

from services.api.accounts import IssuedKey, create_user_with_key
from shared.db.pool import DbConnection

__all__ = ["IssuedKey", "create_user"]


async def create_user(
    connection: DbConnection, email: str, *, name: str | None = None, key_name: str = "default"
) -> IssuedKey:
    """Create the user (or find it by e-mail) and issue a new key, returned in plain text once."""
    return await create_user_with_key(connection, email, name=name, key_name=key_name)
