"""Every change of a campaign's state goes one way, for one campaign (a lifecycle command, a bulk
action's enrolment or carrier) or a batch of them (a bulk operation):

    lock (`lock`, `lock_one`) -> decide (shared/domain/campaigns.py, pure, on `Locked.state`)
    -> apply and emit (`apply_changes`: campaigns and executions set-based, then one
    campaign.status_changed per campaign)

The callers decide (with what else they need: permission, launch readiness, a bulk item's
outcome); locking, writing and announcing are only here. Every campaign status event is built
here (`status_changed`; the sweeps that move a campaign without the state machine use it too)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from shared.db.pool import DbConnection
from shared.db.rows import CampaignRow
from shared.db.sql import Queries
from shared.domain import permissions, schedules
from shared.domain.campaigns import (
    CampaignState,
    CampaignStatus,
    Change,
    ExecutionEffect,
)
from shared.messaging.contracts import CampaignStatusChanged
from shared.messaging.envelope import Cause, Envelope
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import Transaction

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

_EFFECT_QUERIES: dict[ExecutionEffect, tuple[str, ...]] = {
    ExecutionEffect.NONE: (),
    ExecutionEffect.RESUME: ("resume_executions",),
    ExecutionEffect.RESUME_AND_RESET: ("resume_executions", "reset_completed_executions"),
    ExecutionEffect.PAUSE: ("pause_executions",),
    ExecutionEffect.CANCEL: ("cancel_executions",),
    ExecutionEffect.RESTART: ("resume_executions", "restart_finished_executions"),
}


@dataclass(frozen=True)
class Locked:
    """A campaign locked for a change: its row (lock_campaigns), and what the rules read of it."""

    row: asyncpg.Record

    @property
    def campaign(self) -> CampaignRow:
        return CampaignRow.from_row(self.row)

    @property
    def state(self) -> CampaignState:
        return self.campaign.state

    @property
    def ownership(self) -> permissions.CampaignOwnership:
        return self.campaign.ownership


async def lock(connection: DbConnection, campaign_ids: list[UUID]) -> dict[UUID, Locked]:
    """These campaigns, locked in id order until the transaction ends; missing ones are absent."""
    rows = await connection.fetch(QUERIES["lock_campaigns"], campaign_ids)
    return {row["id"]: Locked(row) for row in rows}


async def lock_one(connection: DbConnection, campaign_id: UUID) -> Locked | None:
    return (await lock(connection, [campaign_id])).get(campaign_id)


@dataclass(frozen=True)
class Accepted:
    """A locked campaign and the change the rules accepted for it."""

    campaign: Locked
    change: Change

    @property
    def row(self) -> asyncpg.Record:
        return self.campaign.row

    @property
    def state(self) -> CampaignState:
        return self.campaign.state


async def apply_changes(
    tx: Transaction,
    accepted: list[Accepted],
    actor_id: UUID | None,
    now: datetime,
    *,
    command: str,
    cause: Cause | Envelope | None,
    launched: bool = False,
) -> dict[UUID, int]:
    """Write every change and emit its status event (`command` names what changed it, `cause`
    whom it answers); returns the executions each campaign's change affected."""
    affected = await _write(tx, accepted, actor_id, now, launched=launched)
    for a in accepted:
        status_changed(
            tx.outbox,
            a.row["id"],
            previous_status=a.state.status.value,
            status=a.change.status.value,
            previous_enabled=a.state.enabled,
            enabled=a.change.enabled,
            deleted=a.change.deleted,
            executions_affected=affected[a.row["id"]],
            command=command,
            cause=cause,
            at=now,
        )
    return affected


def status_changed(
    outbox: Outbox,
    campaign_id: UUID,
    *,
    previous_status: str,
    status: str,
    previous_enabled: bool,
    enabled: bool,
    command: str,
    cause: Cause | Envelope | None,
    at: datetime,
    deleted: bool = False,
    executions_affected: int = 0,
) -> None:
    """A campaign's status event: by `apply_changes`, and by the sweeps that move a campaign
    without the state machine (a run that starts or ends, a dead account)."""
    event = CampaignStatusChanged(
        campaign_id=campaign_id,
        previous_status=previous_status,
        status=status,
        enabled=enabled,
        cause=command,
        previous_enabled=previous_enabled,
        deleted=deleted,
        executions_affected=executions_affected,
    )
    outbox.emit(event, key=campaign_id, cause=cause, at=at)


async def _write(
    tx: Transaction,
    accepted: list[Accepted],
    actor_id: UUID | None,
    now: datetime,
    *,
    launched: bool,
) -> dict[UUID, int]:
    connection = tx.connection
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
        [a.change.failure for a in accepted],
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
