"""The one place the API asks the permission matrix about a campaign."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import asyncpg

from services.api.auth import Principal
from services.api.problems import forbidden, not_found
from shared.db.pool import DbConnection
from shared.db.rows import CampaignRow
from shared.db.sql import Queries
from shared.domain import permissions

CAMPAIGNS = Queries.load(Path(__file__).with_suffix(".sql"))


async def authorized(
    connection: DbConnection,
    who: Principal,
    campaign_id: UUID,
    action: permissions.Action,
    *,
    lock: bool = False,
) -> asyncpg.Record:
    """The campaign row if the caller may perform `action`: 404 if it may not even see it,
    403 if it may see it but not do this. Deleted campaigns are visible (to be restored)."""
    row = await connection.fetchrow(CAMPAIGNS["lock" if lock else "get"], campaign_id)
    if row is None:
        raise not_found("campaign")
    decision = permissions.decide(who.caller, CampaignRow.from_row(row).ownership, action)
    if decision is permissions.Decision.INVISIBLE:
        raise not_found("campaign")
    if decision is permissions.Decision.FORBIDDEN:
        raise forbidden(f"the caller may not {action.value.replace('_', ' ')} this campaign")
    record: asyncpg.Record = row
    return record
