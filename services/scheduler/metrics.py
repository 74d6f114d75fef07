"""The scheduler's metrics of bulk work: items processed (counted once their transaction has
committed, so a batch rolled back and applied again counts once) and unfinished work (a count
from the database every sweep, the same in every scheduler instance: take the max, not the sum).
"""

from __future__ import annotations

from collections import Counter as Occurrences
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import Counter, Gauge

from shared.db.sql import Queries
from shared.domain.bulk_actions import ActionStatus, BulkActionType
from shared.domain.bulk_operations import BulkAction, BulkStatus, ItemResult
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

OPERATION_ITEMS = Counter(
    "dripline_bulk_operation_items_total",
    "Campaigns bulk operations have processed, by action and result",
    ["action", "result"],
)
ACTION_ITEMS = Counter(
    "dripline_bulk_action_items_total",
    "Contacts bulk actions have processed, by action and outcome",
    ["action", "outcome"],
)
UNFINISHED_OPERATIONS = Gauge(
    "dripline_bulk_operations_unfinished", "Bulk operations not finished, by status", ["status"]
)
UNFINISHED_ACTIONS = Gauge(
    "dripline_bulk_actions_unfinished", "Bulk actions not finished, by status", ["status"]
)
OPERATION_STATES = (BulkStatus.QUEUED, BulkStatus.PROCESSING)
ACTION_STATES = (ActionStatus.QUEUED, ActionStatus.PROCESSING, ActionStatus.PAUSED)

# Every series from zero, so the first item of a kind shows in rate().
for _action in BulkAction:
    for _result in ItemResult:
        OPERATION_ITEMS.labels(_action.value, _result.value)
for _kind in BulkActionType:
    for _outcome in ItemResult:
        ACTION_ITEMS.labels(_kind.value, _outcome.value)


@dataclass
class Tally:
    """Items decided in one transaction, into `counter` once it has committed."""

    counter: Counter
    seen: Occurrences[tuple[str, str]] = field(default_factory=Occurrences)

    def add(self, action: str, results: Iterable[str]) -> None:
        for result in results:
            self.seen[(action, result)] += 1

    def count(self) -> None:
        for (action, result), items in self.seen.items():
            self.counter.labels(action, result).inc(items)
        self.seen.clear()

    async def committed(self) -> None:
        """`count`, as a consumer's after-commit work."""
        self.count()


async def measure_unfinished(service: Service) -> None:
    """The periodic job: unfinished bulk operations and actions by status, zeros included."""
    async with service.pool.acquire() as connection:
        operations = await connection.fetch(QUERIES["unfinished_operations"])
        actions = await connection.fetch(QUERIES["unfinished_actions"])
    operation_counts = {r["status"]: r["count"] for r in operations}
    action_counts = {r["status"]: r["count"] for r in actions}
    for status in OPERATION_STATES:
        UNFINISHED_OPERATIONS.labels(status.value).set(operation_counts.get(status.value, 0))
    for state in ACTION_STATES:
        UNFINISHED_ACTIONS.labels(state.value).set(action_counts.get(state.value, 0))
