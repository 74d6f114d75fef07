"""The end of a run: a campaign whose executions have all finished becomes completed, or, if it
recurs, scheduled again for its next occurrence (spec 004; docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

from services.scheduler.accounts import DEAD, dead_account_reason
from services.scheduler.changes import status_changed
from shared.db.sql import Queries
from shared.domain import campaigns, schedules
from shared.messaging.transaction import transaction
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
BATCH = 500
RUN_FINISHED = "campaign.run_finished"


async def finish_runs(service: Service) -> int:
    """One pass; returns how many campaigns finished their run."""
    now = service.clock.now()
    async with transaction(service.pool, service.clock) as tx:
        connection = tx.connection
        rows = await connection.fetch(QUERIES["finished_runs"], BATCH)
        for row in rows:
            launch_type = campaigns.LaunchType(row["launch_type"])
            status = campaigns.after_run(launch_type)
            next_run, reason = None, None
            if row["account_health"] in DEAD:
                # The run ended because its account died: that is the campaign's failure.
                status = campaigns.CampaignStatus.FAILED
                reason = dead_account_reason(row["account_health"], row["account_detail"])
            elif status is campaigns.CampaignStatus.SCHEDULED:
                next_run = schedules.next_run(
                    launch_type,
                    scheduled_at=row["scheduled_at"],
                    recurrence=row["recurrence"],
                    timezone=row["timezone"],
                    now=now,
                )
            await connection.execute(
                QUERIES["finish_run"], row["id"], status.value, now, next_run, reason
            )
            status_changed(
                tx.outbox,
                row["id"],
                previous_status=row["status"],
                status=status.value,
                previous_enabled=row["enabled"],
                enabled=row["enabled"],
                command=RUN_FINISHED,
                cause=None,
                at=now,
            )
    return len(rows)
