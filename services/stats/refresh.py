"""Keeping campaign_stats equal to a recount: every event names the campaigns it changed, and
once per consumed batch, inside the batch's transaction, those campaigns are counted again from
the source tables (campaign_statistics, the same SQL as get_campaign_statistics).

Why a recount and not per-event deltas: executions change status in a dozen set-based places
(launch, pause, stop, reset, remove contacts, bulk actions, account failures, the sender's
steps), and a delta from each would be one more way to drift. A recount per touched campaign is
exact by construction, idempotent under redelivery, and costs one index range per campaign; a
batch touches each campaign once however many of its events it holds, so a busy campaign is
counted once per batch, not once per event.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from uuid import UUID

from prometheus_client import Counter, Histogram

from shared.db.sql import Queries
from shared.messaging.consumer import HandlerContext

QUERIES = Queries.load(Path(__file__).with_name("queries.sql"))

LAG = Histogram(
    "dripline_stats_lag_seconds",
    "Seconds from an event until its campaign's statistics were refreshed (freshness)",
    ["topic"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300),
)
REFRESH_SECONDS = Histogram(
    "dripline_stats_refresh_seconds",
    "Time to recount the campaigns one consumed batch touched",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REFRESHED = Counter("dripline_stats_campaigns_refreshed_total", "Campaign statistics recounted")

_KEY = "stats.refresh"


class Touched:
    """The campaigns a batch's events changed, refreshed once when the batch's handlers are done."""

    def __init__(self, context: HandlerContext) -> None:
        self._context = context
        self.campaigns: dict[UUID, datetime] = {}
        self.events: dict[str, list[datetime]] = {}

    def campaign(self, campaign_id: UUID, occurred_at: datetime) -> None:
        seen = self.campaigns.get(campaign_id)
        if seen is None or occurred_at > seen:
            self.campaigns[campaign_id] = occurred_at

    def event(self, topic: str, occurred_at: datetime) -> None:
        self.events.setdefault(topic, []).append(occurred_at)

    async def __call__(self) -> None:
        connection, now = self._context.connection, self._context.clock.now()
        if self.campaigns:
            ids = sorted(self.campaigns)
            started = time.perf_counter()
            await connection.execute(QUERIES["lock_campaigns"], ids)
            await connection.execute(
                QUERIES["refresh"], ids, ids, [self.campaigns[i] for i in ids], now
            )
            REFRESH_SECONDS.observe(time.perf_counter() - started)
            REFRESHED.inc(len(ids))
        for topic, occurred in self.events.items():
            lag = max(0.0, (now - min(occurred)).total_seconds())
            await connection.execute(QUERIES["record_progress"], topic, max(occurred), now, lag)
        self._context.after_commit.append(self._observe_freshness)

    async def _observe_freshness(self) -> None:
        # After the commit: that is when a reader can see the refreshed figures.
        now = self._context.clock.now()
        for topic, occurred in self.events.items():
            histogram = LAG.labels(topic)
            for at in occurred:
                histogram.observe(max(0.0, (now - at).total_seconds()))


def touched(context: HandlerContext) -> Touched:
    """This batch's Touched, registered to run before the batch commits."""
    existing = context.before_commit.get(_KEY)
    if isinstance(existing, Touched):
        return existing
    fresh = Touched(context)
    context.before_commit[_KEY] = fresh
    return fresh
