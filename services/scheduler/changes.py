"""Applying accepted state-machine changes to campaigns and their executions, set-based, for
one campaign (a lifecycle command) or a batch of them (a bulk operation)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import schedules
from shared.domain.campaigns import CampaignState, CampaignStatus, Change, ExecutionEffect

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

_EFFECT_QUERIES: dict[ExecutionEffect, tuple[str, ...]] = {
    ExecutionEffect.NONE: (),
    ExecutionEffect.RESUME: ("resume_executions",),
    ExecutionEffect.RESUME_AND_RESET: ("resume_executions", "reset_completed_executions"),
    ExecutionEffect.PAUSE: ("pause_executions",),
    ExecutionEffect.CANCEL: ("cancel_executions",),
}


@dataclass(frozen=True)
class Accepted:
    """A campaign (its locked row), the state it was in, and the change it goes through."""

    row: Any
    state: CampaignState
    change: Change


async def apply_changes(
    connection: DbConnection,
    accepted: list[Accepted],
    actor_id: UUID,
    now: datetime,
    *,
    launched: bool = False,
) -> dict[UUID, int]:
    """Write every change; returns the executions each campaign's change affected."""
    affected: dict[UUID, int] = defaultdict(int)
    if not accepted:
        return affected
    await connection.execute(
        QUERIES["apply_changes"],
        [a.row["id"] for a in accepted],
        [a.change.status.value for a in accepted],
        [a.change.enabled for a in accepted],
        [a.change.deleted for a in accepted],
        actor_id,
        now,
    )
    if launched:
        await connection.execute(
            QUERIES["set_launched"],
            [a.row["id"] for a in accepted],
            [_next_run(a, now) for a in accepted],
            now,
        )
    groups: dict[tuple[ExecutionEffect, str | None], list[UUID]] = defaultdict(list)
    for a in accepted:
        groups[(a.change.executions, a.change.reason)].append(a.row["id"])
    for (effect, reason), ids in groups.items():
        for name in _EFFECT_QUERIES[effect]:
            arguments: tuple[Any, ...] = (ids, now, reason) if name == "cancel_executions" else (
                ids, now,
            )  # fmt: skip
            for row in await connection.fetch(QUERIES[name], *arguments):
                affected[row["campaign_id"]] += row["changed"]
    return affected


def _next_run(accepted: Accepted, now: datetime) -> datetime | None:
    if accepted.change.status is not CampaignStatus.SCHEDULED:
        return None
    row = accepted.row
    return schedules.next_run(
        accepted.state.launch_type,
        scheduled_at=row["scheduled_at"],
        recurrence=row["recurrence"],
        timezone=row["timezone"],
        now=now,
    )
