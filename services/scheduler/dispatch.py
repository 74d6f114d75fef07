"""Dispatch: due executions become `execution.due` events keyed by Telegram account, and
scheduled campaigns start on time.

A claim leases the execution (`lease_s`); the event carries the lease, so the sender can tell
a current event from a stale one. An execution whose lease runs out without the sender moving it
on is claimed and emitted again: a lost event, or a broker that forgot everything, delays work
but loses none. Claims take row locks with SKIP LOCKED, so schedulers never emit the same
execution twice within a lease.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from prometheus_client import Counter, Histogram

from services.scheduler.changes import status_changed
from shared.db.sql import Queries
from shared.domain import campaigns
from shared.messaging.contracts import ExecutionDue
from shared.messaging.transaction import transaction
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
CLAIM_BATCH = 2000  # the literal LIMIT of claim_due
SCHEDULED_LAUNCH = "campaign.scheduled_launch"

DISPATCHED = Counter("dripline_executions_dispatched_total", "Due executions claimed and emitted")
DISPATCH_LAG = Histogram(
    "dripline_dispatch_lag_seconds",
    "How late an execution was claimed: claim time minus next_execution_at",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


async def dispatch_due(service: Service) -> int:
    """Claim and emit until nothing is due; returns how many were emitted."""
    emitted = 0
    while True:
        now = service.clock.now()
        lease_until = now + timedelta(seconds=service.settings.lease_s)
        async with transaction(service.pool, service.clock) as tx:
            rows = await tx.connection.fetch(QUERIES["claim_due"], now, lease_until)
            for row in rows:
                due = ExecutionDue(
                    execution_id=row["id"],
                    campaign_id=row["campaign_id"],
                    telegram_account_id=row["telegram_account_id"],
                    lease_until=lease_until,
                )
                tx.outbox.emit(due, key=row["telegram_account_id"], at=now)
                DISPATCH_LAG.observe(max(0.0, (now - row["next_execution_at"]).total_seconds()))
        emitted += len(rows)
        DISPATCHED.inc(len(rows))
        if len(rows) < CLAIM_BATCH:
            return emitted


async def start_scheduled(service: Service) -> int:
    """Scheduled and recurring campaigns whose next run has come become active."""
    now = service.clock.now()
    async with transaction(service.pool, service.clock) as tx:
        connection = tx.connection
        rows = await connection.fetch(QUERIES["due_launches"], now)
        for row in rows:
            await connection.execute(QUERIES["start_run"], row["id"], now)
            if campaigns.LaunchType(row["launch_type"]) is campaigns.LaunchType.RECURRING:
                await connection.execute(QUERIES["restart_executions"], row["id"], now)
            status_changed(
                tx.outbox,
                row["id"],
                previous_status=row["status"],
                status="active",
                previous_enabled=row["enabled"],
                enabled=row["enabled"],
                command=SCHEDULED_LAUNCH,
                cause=None,
                at=now,
            )
    return len(rows)
