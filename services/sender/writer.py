"""Applies a staged plan (staging.Plan) in the caller's transaction: a few set-based statements
for every execution's step in it, then its events into the transaction's outbox."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from services.sender.staging import Loaded, Plan, stage
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import interpreter
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
