"""Reconciliation: the materialized figures against a recount from the source tables.

A difference that lasts longer than the stats service's lag means an event did not reach the
stats service (a broker lost it after acknowledging it) or did not name a campaign it changed
(or a change emitted no event). The second is a bug to fix where the change is made; either
way `repair` replaces the drifted figures by the recount, safely beside the event-driven
refresh, and counts what it found in dripline_stats_drift_total. `dripline stats verify
[--repair]`, the stats service's own reconciliation (reconcile.py) and the end-to-end tests
run this."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from prometheus_client import Counter

from shared.db.pool import DbConnection, connect
from shared.db.sql import Queries

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

FIGURES = (
    "total_contacts", "contacts_started", "contacts_completed", "contacts_failed",
    "contacts_active", "contacts_responded", "messages_sent", "messages_failed",
    "messages_delivered", "messages_not_sent", "variants", "by_status", "contacts_opted_out",
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

    def repaired(self) -> str:
        return (
            f"repaired campaign {self.campaign_id}: {self.figure} "
            f"{self.materialized} → {self.recounted}"
        )


DRIFT = Counter(
    "dripline_stats_drift_total",
    "Stored statistics found different from a recount and repaired, per campaign and figure",
    ["figure"],
)
for _figure in FIGURES:
    DRIFT.labels(_figure)  # from zero, so the first drift shows in rate()

# Campaigns repaired per transaction: each holds its campaigns' statistics locks until commit.
_REPAIR_CHUNK = 100


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
    return _differences(stored, counted)


def _differences(
    stored: Mapping[UUID, Mapping[str, Any]], counted: Iterable[Mapping[str, Any]]
) -> list[Drift]:
    found: list[Drift] = []
    for recount in counted:
        materialized: Mapping[str, Any] = stored.get(recount["campaign_id"]) or _ZERO
        for figure in FIGURES:
            if materialized[figure] != recount[figure]:
                found.append(
                    Drift(recount["campaign_id"], figure, materialized[figure], recount[figure])
                )
    return found


async def repair(
    connection: DbConnection, campaign_ids: Iterable[UUID], now: datetime | None = None
) -> list[Drift]:
    """Replace these campaigns' stored figures (shares, totals, variants) by a recount; returns
    what differed, as found under the campaigns' statistics locks.

    The lock is the one every event-driven refresh takes (statistics_lock), so no refresh of
    these campaigns runs meanwhile; the rebuild's statements run after the lock, so they see
    every refresh committed before; and a refresh after it recounts its executions against the
    rebuilt shares. The rebuild is the event-driven refresh itself (refresh_statistics) run on
    campaigns whose stored figures were dropped first, so the two cannot count differently; it
    restarts a campaign's `refreshes` counter. A campaign that was in fact equal to its recount
    by then is rewritten unchanged and reported as nothing."""
    now = now or datetime.now(UTC)
    fixed: list[Drift] = []
    ordered = sorted(set(campaign_ids))
    for start in range(0, len(ordered), _REPAIR_CHUNK):
        chunk = ordered[start : start + _REPAIR_CHUNK]
        async with connection.transaction():
            await connection.execute(QUERIES["lock_campaigns"], chunk)
            before = await connection.fetch(QUERIES["materialized_figures"], chunk)
            forgotten = await connection.fetch(QUERIES["forget_figures"], chunk)
            last_event = {r["campaign_id"]: r["last_event_at"] for r in forgotten}
            await connection.execute(
                QUERIES["recount"], chunk, [last_event.get(c) for c in chunk], now
            )
            after = await connection.fetch(QUERIES["materialized_figures"], chunk)
        fixed.extend(_differences({r["campaign_id"]: r for r in before}, after))
    for difference in fixed:
        DRIFT.labels(difference.figure).inc()
    return fixed


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


async def verify(dsn: str, settle_s: float, *, repair_drift: bool = False) -> list[Drift]:
    """The drift that outlasts `settle_s`; repaired first with `repair_drift`, and then what the
    repair found (what it changed) is returned."""
    connection = await connect(dsn)
    try:
        found = await settled_drift(connection, settle_s=settle_s)
        if repair_drift and found:
            return await repair(connection, {d.campaign_id for d in found})
        return found
    finally:
        await connection.close()
