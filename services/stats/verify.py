"""Reconciliation: the materialized figures against a recount from the source tables.

A difference that lasts longer than the stats service's lag means an event did not name a
campaign it changed (or a change emitted no event): that is a bug to fix where the change is
made, never something to paper over here. `dripline stats verify` and the end-to-end tests
run this."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from services.stats.refresh import QUERIES
from shared.db.pool import DbConnection, connect

FIGURES = (
    "total_contacts", "contacts_started", "contacts_completed", "contacts_failed",
    "contacts_active", "contacts_responded", "messages_sent", "messages_failed",
    "messages_delivered", "messages_not_sent", "variants", "by_status",
)  # fmt: skip


@dataclass(frozen=True)
class Drift:
    campaign_id: UUID
    figure: str
    materialized: Any
    recounted: Any

    def __str__(self) -> str:
        return (
            f"campaign {self.campaign_id}: {self.figure} is {self.materialized!r} in "
            f"campaign_stats, {self.recounted!r} when recounted"
        )


_ZERO: Mapping[str, Any] = {
    name: {} if name in ("variants", "by_status") else 0 for name in FIGURES
}


async def drift(connection: DbConnection, campaign_ids: list[UUID] | None = None) -> list[Drift]:
    """Every figure that differs, for these campaigns or all of them. A campaign without a row
    is compared as all zeros: no event has touched it, so nothing may have changed it either."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        # One snapshot for both sides, so a refresh committing in between cannot fake a drift.
        stored = {
            r["campaign_id"]: r
            for r in await connection.fetch(QUERIES["materialized_figures"], campaign_ids)
        }
        counted = await connection.fetch(QUERIES["recounted_figures"], campaign_ids)
    found: list[Drift] = []
    for recount in counted:
        materialized: Mapping[str, Any] = stored.get(recount["campaign_id"]) or _ZERO
        for figure in FIGURES:
            if materialized[figure] != recount[figure]:
                found.append(
                    Drift(recount["campaign_id"], figure, materialized[figure], recount[figure])
                )
    return found


async def settled_drift(
    connection: DbConnection, *, settle_s: float = 10.0, poll_s: float = 0.25
) -> list[Drift]:
    """Drift that outlasts `settle_s`: a campaign that differs only because its latest events
    are still on their way converges within the stats service's lag."""
    deadline = time.monotonic() + settle_s
    found = await drift(connection)
    while found and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
        found = await drift(connection, sorted({d.campaign_id for d in found}))
    return found


async def verify(dsn: str, settle_s: float) -> list[Drift]:
    connection = await connect(dsn)
    try:
        return await settled_drift(connection, settle_s=settle_s)
    finally:
        await connection.close()
