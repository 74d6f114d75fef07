"""Who a command's actor is, for the permission rules: their role in the organization named by
the command, and that organization's admin view setting."""

from __future__ import annotations

from pathlib import Path

from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import permissions
from shared.messaging.envelope import Actor

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


async def caller_of(connection: DbConnection, actor: Actor) -> permissions.Caller:
    """In personal mode the caller has no role; an actor who is not a member of the named
    organization has none either, and so sees none of its campaigns."""
    if actor.organization_id is None:
        return permissions.Caller(actor.user_id, None, None)
    row = await connection.fetchrow(QUERIES["caller_context"], actor.organization_id, actor.user_id)
    if row is None:
        return permissions.Caller(actor.user_id, actor.organization_id, None)
    return permissions.Caller(
        actor.user_id,
        actor.organization_id,
        permissions.Role(row["role"]),
        admin_view_enabled=row["admin_view_enabled"],
    )
