"""The consumer of dripline.executions.due: one step of each due execution.

A consumed batch of due events is handled in the consumer's transaction, set-based: the batch's
executions are locked and loaded in one query (executions.lock_many), the interpreter runs for
each in Python (staging), the sends are paced per account in batch order (reservations), and the
writes of every step (executions, logs, tags, send records, the accounts' pace, events) go back
in a few statements (reservations.claim, writer.apply). Each execution's step is atomic; the
batch's steps share the transaction.

If a step is a send, that transaction writes the send record (unique key: execution, node, how
many sends before) and reserves the account's pace. The network calls run after the commit (the
gateway may take them all at once); answers.py records what Telegram said for all of them and
moves their executions on. If the process dies in between, the lease runs out, the scheduler
emits the execution again, and the step finds its send record: it is sent again with the same
random_id, which Telegram (and the simulator) deduplicate, so it is reconciled, never sent twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.sender import executions, reservations
from services.sender.answers import Answers
from services.sender.gateway import Gateway
from services.sender.reservations import Claim, Reservations
from services.sender.staging import (
    CampaignCache,
    Loaded,
    PendingSend,
    Plan,
    campaign_of,
    load,
    runnable,
    send_key,
    skip,
    stage,
    step_due,
)
from services.sender.writer import apply
from shared.db.rows import ExecutionRow
from shared.domain import interpreter
from shared.domain.clock import Clock
from shared.messaging.consumer import HandlerContext, as_batch, takes_batches
from shared.messaging.contracts import Decoded, ExecutionDue


class Steps:
    """The due handler; what follows its sends is its `answers`' (one gateway for both)."""

    def __init__(
        self, gateway: Gateway, pool: Callable[[], asyncpg.Pool[Any]], clock: Clock
    ) -> None:
        self.answers = Answers(gateway, pool, clock)

    @property
    def gateway(self) -> Gateway:
        return self.answers.gateway

    @takes_batches
    async def on_due(
        self,
        context: HandlerContext,
        message: Decoded[ExecutionDue] | Sequence[Decoded[ExecutionDue]],
    ) -> None:
        """Step the executions of these due events (one, or a batch's, in batch order)."""
        dues = [decoded.payload for decoded in as_batch(message)]
        if not dues:
            return
        connection, now = context.connection, context.clock.now()
        # Only executions whose lease is their event's are locked (and returned): the rest are
        # stale events, which runnable() would turn away anyway.
        rows = await executions.lock_many(
            connection, [due.execution_id for due in dues], [due.lease_until for due in dues]
        )
        cache: CampaignCache = {}
        # The interpreter first (pure), so what the sends need is fetched in one query each.
        stepped = step_all(dues, rows, cache, now)
        sending = [(ld, step) for ld, step in stepped if isinstance(step.outcome, interpreter.Send)]
        reserved = await reservations.gather(connection, sending)
        plan, claims = plan_batch(stepped, reserved, cache, now)
        pending: list[PendingSend] = []
        if claims:
            pending = await reservations.claim(connection, claims, reserved, now)
        await apply(connection, context.outbox, plan)
        if pending:
            consumer = context.consumer

            async def send() -> None:
                await self.answers.send_batch(pending, consumer)

            context.after_commit.append(send)


def step_all(
    dues: Sequence[ExecutionDue],
    rows: dict[UUID, ExecutionRow],
    cache: CampaignCache,
    now: datetime,
) -> list[tuple[Loaded, interpreter.Step]]:
    """The interpreter's step for each runnable execution, once each, in batch order."""
    stepped: list[tuple[Loaded, interpreter.Step]] = []
    taken: set[UUID] = set()
    for due in dues:
        row = rows.get(due.execution_id)
        if due.execution_id in taken or not runnable(row, due):
            continue
        assert row is not None
        taken.add(due.execution_id)
        loaded = load(row, cache)
        stepped.append((loaded, step_due(loaded, now)))
    return stepped


def plan_batch(
    stepped: Sequence[tuple[Loaded, interpreter.Step]],
    reserved: Reservations,
    cache: CampaignCache,
    now: datetime,
) -> tuple[Plan, list[Claim]]:
    """Stage the batch's steps, in batch order: a step that may not go on is skipped, a send is
    paced (and claimed when it goes now), anything else is saved as the interpreter left it."""
    plan = Plan()
    claims: list[Claim] = []
    for loaded, step in stepped:
        refused = reservations.refusal(loaded, step, reserved.paces, now)
        if refused is not None:
            key = send_key(loaded, step) if isinstance(step.outcome, interpreter.Send) else ""
            skip(plan, loaded, step, refused, reserved.records.get(key), now)
        elif isinstance(step.outcome, interpreter.Send):
            campaign = campaign_of(loaded.row, cache)
            claim = reservations.pace_send(
                plan,
                loaded,
                step,
                campaign.window,
                reserved,
                now,
                recipient_zone=campaign.recipient_zone(loaded.row),
            )
            if claim is not None:
                claims.append(claim)
        else:
            stage(plan, loaded, step, now)
    return plan, claims
