"""The stats service's own reconciliation: figures that events alone left wrong are repaired
without anyone running `dripline stats verify --repair`.

Events can be lost after the relay marked them sent (a broker that loses what it acknowledged),
and then nothing would ever name their campaigns again. Their outbox records are still there
(for `outbox_retention_s`), so "changed since the last reconciliation" is read from the outbox,
not from the broker and not from row timestamps (several are written with the services'
clocks, and a message's failure or deletion stamps none): every campaign named by a record
written since the last run is compared with a recount. At start-up, and after a pause longer
than the outbox's retention, every campaign is.

A difference must outlast `stats_reconcile_settle_s` with the same stored and recounted values
before it is repaired: one that is only events on their way changes (or vanishes) meanwhile,
and the campaign is compared again on the next run, since those events' records name it."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from services.stats.verify import Drift, drift, repair
from shared.db.pool import fetch_replanned, fetchrow_replanned
from shared.db.sql import Queries
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
log = logging.getLogger(__name__)

# Campaigns compared per snapshot: a whole reconciliation walks them all in slices.
_COMPARE_CHUNK = 500


class Reconciler:
    """The periodic job: runs on the service's first sweep, then every
    `stats_reconcile_interval_s` (the sweeps tick faster)."""

    def __init__(self) -> None:
        self._next_run = 0.0

    async def __call__(self, service: Service) -> list[Drift] | None:
        if time.monotonic() < self._next_run:
            return None
        settings = service.settings
        fixed = await reconcile(
            service.pool,
            settle_s=settings.stats_reconcile_settle_s,
            retention_s=settings.outbox_retention_s,
        )
        # Only after a run that completed: a failed one is retried on the next sweep.
        self._next_run = time.monotonic() + settings.stats_reconcile_interval_s
        return fixed


async def reconcile(pool: asyncpg.Pool[Any], *, settle_s: float, retention_s: float) -> list[Drift]:
    """Compare the campaigns changed since the last reconciliation with a recount, repair what
    lastingly differs, and record how far the outbox was read. Returns what was repaired."""
    async with pool.acquire() as connection:
        window = await fetchrow_replanned(
            connection, QUERIES["reconcile_window"], settle_s, retention_s
        )
        if window["whole"]:
            rows = await connection.fetch(QUERIES["every_campaign"])
        else:
            rows = await fetch_replanned(
                connection, QUERIES["changed_campaigns"], window["since"], window["until"]
            )
        candidates: list[UUID] = [row["id"] for row in rows]
        found: list[Drift] = []
        for start in range(0, len(candidates), _COMPARE_CHUNK):
            found.extend(await drift(connection, candidates[start : start + _COMPARE_CHUNK]))
    fixed: list[Drift] = []
    if found:
        # Not holding a connection while waiting: the pool is the consumers' too.
        await asyncio.sleep(settle_s)
        async with pool.acquire() as connection:
            again = await drift(connection, sorted({d.campaign_id for d in found}))
            lasting = {d.campaign_id for d in found if d in again}
            if lasting:
                fixed = await repair(connection, lasting)
    for difference in fixed:
        log.warning("statistics drifted, %s", difference.repaired())
    async with pool.acquire() as connection:
        await connection.execute(QUERIES["record_reconciliation"], window["until"])
    log.info(
        "statistics reconciled: %d campaign(s) compared%s, %d repaired",
        len(candidates),
        " (all)" if window["whole"] else "",
        len({d.campaign_id for d in fixed}),
    )
    return fixed
