"""Dispatch: due executions become `execution.due` events keyed by Telegram account, and
scheduled campaigns start on time.

A claim leases the execution (`lease_s`); the event carries the lease, so the sender can tell
a current event from a stale one. An execution whose lease runs out without the sender moving it
on is claimed and emitted again: a lost event, or a broker that forgot everything, delays work
but loses none. Claims take row locks with SKIP LOCKED, so schedulers never emit the same
execution twice within a lease.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from services.scheduler.changes import Accepted, Locked, apply_changes
from shared.db import campaigns as campaign_reads
from shared.db.pool import DbConnection, fetch_replanned
from shared.db.sql import Queries
from shared.domain import campaigns, schedules
from shared.messaging.contracts import ExecutionDue
from shared.messaging.transaction import transaction
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
CLAIM_BATCH = 2000  # claim_due takes this many at most at a time
FIRE_BATCH = 1000  # the literal LIMIT of due_launches
SCHEDULED_LAUNCH = "campaign.scheduled_launch"
log = logging.getLogger(__name__)

DISPATCHED = Counter("dripline_executions_dispatched_total", "Due executions claimed and emitted")
IN_FLIGHT = Gauge(
    "dripline_executions_in_flight",
    "Executions claimed and not yet stepped by a sender, as dispatch last counted them (up to "
    "dispatch_max_in_flight)",
)
FIRED = Counter(
    "dripline_scheduled_launches_total",
    "Scheduled and recurring campaigns decided at their run time (started, failed or missed)",
)
DISPATCH_LAG = Histogram(
    "dripline_dispatch_lag_seconds",
    "How late an execution was claimed: claim time minus next_execution_at",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


async def dispatch_due(service: Service) -> int:
    """Claim and emit until nothing is due or `dispatch_max_in_flight` executions are in
    flight (claimed, not yet stepped); returns how many were emitted. The bound is the
    backpressure: a backlog larger than the senders can step within a lease would otherwise be
    leased at once and claimed again as the leases run out, each time emitted again."""
    emitted = 0
    bound = service.settings.dispatch_max_in_flight
    # Counted once per sweep, then kept by adding this sweep's claims: counting again after
    # every batch would read up to `bound` index entries each time.
    in_flight: int | None = None
    while True:
        now = service.clock.now()
        lease_until = now + timedelta(seconds=service.settings.lease_s)
        async with transaction(service.pool, service.clock) as tx:
            if in_flight is None:
                in_flight = int(await tx.connection.fetchval(QUERIES["in_flight"], now, bound))
                IN_FLIGHT.set(in_flight)
            credit = min(CLAIM_BATCH, bound - in_flight)
            if credit <= 0:
                return emitted
            rows = await fetch_replanned(
                tx.connection, QUERIES["claim_due"], now, lease_until, credit
            )
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
        in_flight += len(rows)
        DISPATCHED.inc(len(rows))
        if len(rows) < credit:
            return emitted


async def start_scheduled(service: Service) -> int:
    """Scheduled and recurring campaigns whose run time has come (issue 16), through the state
    machine (`campaigns.fire`): each starts if its launch requirements still hold, fails with
    every unmet one as its reason if not, and is flagged `missed_run_at` (never started late)
    if its time passed more than `missed_run_grace_s` ago, while no scheduler ran.

    A burst (thousands due in the same second) is taken in batches of `FIRE_BATCH`, one
    transaction each, until nothing is due; every write of a batch is set-based. Another
    scheduler running the same sweep skips the locked batch and takes the next one. Returns how
    many campaigns it decided on."""
    decided = 0
    while True:
        taken = await _fire_batch(service)
        decided += taken
        FIRED.inc(taken)
        if taken < FIRE_BATCH:
            return decided


async def _fire_batch(service: Service) -> int:
    now = service.clock.now()
    grace = timedelta(seconds=service.settings.missed_run_grace_s)
    async with transaction(service.pool, service.clock) as tx:
        connection = tx.connection
        rows = await connection.fetch(QUERIES["due_launches"], now)
        if not rows:
            return 0
        readiness = await campaign_reads.readiness_of_many(connection, [r["id"] for r in rows])
        started: list[Accepted] = []
        failed: list[Accepted] = []
        missed: list[tuple[Locked, campaigns.Missed]] = []
        for row in rows:
            campaign = Locked(row)
            outcome = campaigns.fire(
                campaign.state,
                readiness[row["id"]],
                due_at=row["next_run_at"],
                now=now,
                grace=grace,
            )
            if isinstance(outcome, campaigns.Missed):
                missed.append((campaign, outcome))
            elif outcome is not None:
                chosen = started if outcome.status is campaigns.CampaignStatus.ACTIVE else failed
                chosen.append(Accepted(campaign, outcome))
        await _record_missed(connection, missed, now)
        for accepted, launched in ((started, True), (failed, False)):
            await apply_changes(
                tx, accepted, None, now, command=SCHEDULED_LAUNCH, cause=None, launched=launched
            )
    return len(rows)


async def _record_missed(
    connection: DbConnection, missed: list[tuple[Locked, campaigns.Missed]], now: datetime
) -> None:
    """The missed time is kept for a person to answer; a recurring campaign moves on to its next
    occurrence after now, a one-off waits with no run time until it is run or rescheduled."""
    if not missed:
        return
    next_runs: list[datetime | None] = []
    for campaign, outcome in missed:
        row = campaign.row
        log.warning("campaign %s missed its run at %s; it waits for a person", row["id"],
                    outcome.due_at)  # fmt: skip
        next_run = None
        if campaign.state.launch_type is campaigns.LaunchType.RECURRING:
            next_run = schedules.next_run(
                campaign.state.launch_type,
                scheduled_at=row["scheduled_at"],
                recurrence=row["recurrence"],
                timezone=row["timezone"],
                now=now,
            )
        next_runs.append(next_run)
    await connection.execute(
        QUERIES["record_missed"],
        [campaign.row["id"] for campaign, _ in missed],
        [outcome.due_at for _, outcome in missed],
        next_runs,
        now,
    )
