"""Applies a staged plan (staging.Plan) in the caller's transaction: a few set-based statements
for every execution's step in it, then its events into the transaction's outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from services.sender.staging import Loaded, Plan, stage
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import interpreter
from shared.domain.crm import OpportunityStatus
from shared.domain.flows import NodeType
from shared.messaging.contracts import OpportunityStageChanged
from shared.messaging.outbox import Outbox

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


async def apply(connection: DbConnection, outbox: Outbox, plan: Plan) -> None:
    """Write the plan and emit its events; the plan is empty afterwards, ready to gather more."""
    if plan.executions:
        columns = list(zip(*plan.executions.values(), strict=True))
        await connection.execute(QUERIES["save_executions"], *columns)
    if plan.skips:
        columns = list(zip(*plan.skips.values(), strict=True))
        await connection.execute(QUERIES["skip_executions"], *columns)
    if plan.dropped:
        await connection.execute(QUERIES["drop_send_records"], plan.dropped)
    if plan.stages:
        await _move_opportunities(connection, outbox, plan)
    if plan.logs:
        columns = list(zip(*plan.logs, strict=True))
        await connection.execute(QUERIES["write_logs_many"], *columns)
    if plan.tags:
        await connection.executemany(
            QUERIES["set_contact_tags"],
            [(contact, tags, now) for contact, (tags, now) in plan.tags.items()],
        )
    for payload, key, at in plan.events:
        outbox.emit(payload, key=key, at=at)
    plan.executions.clear()
    plan.logs.clear()
    plan.tags.clear()
    plan.skips.clear()
    plan.dropped.clear()
    plan.events.clear()
    plan.stages.clear()


async def save(
    connection: DbConnection,
    outbox: Outbox,
    loaded: Loaded,
    step: interpreter.Step,
    now: datetime,
    *,
    sends: int | None = None,
    lease_until: datetime | None = None,
) -> None:
    """Stage one interpreter step and apply it at once (a reply, a failed send)."""
    plan = Plan()
    stage(plan, loaded, step, now, sends=sends, lease_until=lease_until)
    await apply(connection, outbox, plan)


async def _move_opportunities(connection: DbConnection, outbox: Outbox, plan: Plan) -> None:
    """set_opportunity_stage (issue 19, item 3): the contacts' opportunities moved to their
    stages (created there if absent) in the step's transaction, an `opportunity.stage_changed`
    event for each that entered a stage (source flow), as the bulk upsert does. A move whose
    stage or pipeline is gone since the flow was saved changes nothing and is logged skipped
    (stage_not_found); the flow goes on."""
    moves = sorted(plan.stages.values(), key=lambda m: (m.contact_id, m.pipeline_id))
    usable = await connection.fetch(
        QUERIES["usable_stage_moves"],
        [m.contact_id for m in moves],
        [m.pipeline_id for m in moves],
        [m.stage_id for m in moves],
    )
    names = {(r["contact_id"], r["pipeline_id"]): r["stage_name"] for r in usable}
    for m in moves:
        if (m.contact_id, m.pipeline_id) not in names:
            plan.logs.append(
                (
                    m.campaign_id,
                    m.execution_id,
                    m.contact_id,
                    m.node_id,
                    NodeType.SET_OPPORTUNITY_STAGE.value,
                    "node_executed",
                    "skipped",
                    "stage_not_found",
                    m.at,
                )
            )
    moves = [m for m in moves if (m.contact_id, m.pipeline_id) in names]
    if not moves:
        return
    before = await connection.fetch(
        QUERIES["lock_opportunities"],
        [m.contact_id for m in moves],
        [m.pipeline_id for m in moves],
    )
    previous = {(r["contact_id"], r["pipeline_id"]): r["stage_id"] for r in before}
    changed = await connection.fetch(
        QUERIES["set_opportunity_stages"],
        [m.contact_id for m in moves],
        [m.pipeline_id for m in moves],
        [m.stage_id for m in moves],
        [m.name for m in moves],
        [m.created_by for m in moves],
        moves[0].at,
    )
    by_key = {(m.contact_id, m.pipeline_id): m for m in moves}
    for row in changed:
        key = (row["contact_id"], row["pipeline_id"])
        move = by_key[key]
        event = OpportunityStageChanged(
            opportunity_id=row["id"],
            pipeline_id=row["pipeline_id"],
            contact_id=row["contact_id"],
            previous_stage_id=previous.get(key),
            stage_id=row["stage_id"],
            stage_name=names[key],
            status=OpportunityStatus(row["status"]),
            value=row["value"],
            source="flow",
            campaign_id=move.campaign_id,
            execution_id=move.execution_id,
        )
        outbox.emit(event, key=row["id"], at=move.at)
