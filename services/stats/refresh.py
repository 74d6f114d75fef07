"""Keeping campaign_stats equal to a recount, at the cost of the events rather than of the
campaigns' sizes. Every event names what it changed: an execution (its share of the figures is
recounted from the source tables and the difference added to its campaign's totals), or a whole
campaign (every execution of it is recounted that way). Once per consumed batch, inside the
batch's transaction, one statement (refresh_statistics in the schema) does it for everything the
batch named; a busy execution or campaign is counted once per batch, however many events it had.

Why recount shares and not apply per-event deltas: executions change status in a dozen
set-based places (launch, pause, stop, reset, remove contacts, bulk actions, account failures,
the sender's steps), and a delta from each would be one more way to drift; a redelivered or
reordered delta another. A share recounted from the source is exact and idempotent.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from uuid import UUID

from prometheus_client import Counter, Histogram

from shared.db.sql import Queries
from shared.messaging.consumer import HandlerContext

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

LAG = Histogram(
    "dripline_stats_lag_seconds",
    "Seconds from an event until its campaign's statistics were refreshed (freshness)",
    ["topic"],
    buckets=(0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60, 300),
)
REFRESH_SECONDS = Histogram(
    "dripline_stats_refresh_seconds",
    "Time to bring up to date what one consumed batch changed",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
REFRESHED = Counter(
    "dripline_stats_campaigns_refreshed_total", "Campaign statistics brought up to date"
)

_KEY = "stats.refresh"


class Touched:
    """What a batch's events changed, refreshed once when the batch's handlers are done."""

    def __init__(self, context: HandlerContext) -> None:
        self._context = context
        self.executions: set[UUID] = set()
        self.whole: set[UUID] = set()  # campaigns to recount whole
        self.named: dict[UUID, datetime] = {}  # every campaign named, with its newest event
        self.events: dict[str, list[datetime]] = {}

    def execution(self, campaign_id: UUID, execution_id: UUID, occurred_at: datetime) -> None:
        self.executions.add(execution_id)
        self._name(campaign_id, occurred_at)

    def campaign(self, campaign_id: UUID, occurred_at: datetime) -> None:
        self.whole.add(campaign_id)
        self._name(campaign_id, occurred_at)

    def _name(self, campaign_id: UUID, occurred_at: datetime) -> None:
        seen = self.named.get(campaign_id)
        if seen is None or occurred_at > seen:
            self.named[campaign_id] = occurred_at

    def event(self, topic: str, occurred_at: datetime) -> None:
        self.events.setdefault(topic, []).append(occurred_at)

    async def __call__(self) -> None:
        connection, now = self._context.connection, self._context.clock.now()
        if self.named:
            named = sorted(self.named)
            started = time.perf_counter()
            await connection.execute(QUERIES["lock_campaigns"], named)
            await connection.execute(
                QUERIES["refresh"],
                sorted(self.executions),
                sorted(self.whole),
                named,
                [self.named[c] for c in named],
                now,
            )
            REFRESH_SECONDS.observe(time.perf_counter() - started)
            REFRESHED.inc(len(named))
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
