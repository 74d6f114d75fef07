"""Campaign reads shared by the API and the scheduler."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.accounts import AccountHealth
from shared.domain.campaigns import LaunchReadiness
from shared.domain.flows import launch_problems

QUERIES = Queries.load(Path(__file__).with_name("campaigns.sql"))


def readiness_of(row: Mapping[str, Any]) -> LaunchReadiness:
    """From a row with account_health, has_contacts and flow."""
    health = row["account_health"]
    return LaunchReadiness(
        account=AccountHealth(health) if health is not None else None,
        contacts=1 if row["has_contacts"] else 0,
        flow_problems=launch_problems(row["flow"]),
    )


async def readiness(connection: DbConnection, campaign_id: UUID) -> LaunchReadiness:
    found = await readiness_of_many(connection, [campaign_id])
    if campaign_id not in found:
        raise LookupError(f"no campaign {campaign_id}")
    return found[campaign_id]


async def readiness_of_many(
    connection: DbConnection, campaign_ids: list[UUID]
) -> dict[UUID, LaunchReadiness]:
    rows = await connection.fetch(QUERIES["readiness"], campaign_ids)
    return {row["id"]: readiness_of(row) for row in rows}
