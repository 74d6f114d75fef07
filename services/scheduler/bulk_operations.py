"""Bulk operations over campaigns (spec 000), applied by the scheduler.

A request (dripline.bulk.commands, from the API or from another system) is recorded here, as the
one owner of `bulk_operations`, resolved into one item per campaign, and its first batch is
applied at once; a periodic job applies the remaining batches. Its progress events answer the
request under its correlation id (bulk_operation.completed closes it), which is what the API
waits for. A command whose message the broker lost is applied from its outbox record
(services/scheduler/recovery.py).

Each batch is one transaction: lock the batch's campaigns in id order, decide each
item (shared/domain/bulk_operations.py), change campaigns and executions set-based, record
the outcomes and counters, and emit progress. A crash rolls back a batch whole, and the next run
picks up the items still pending, so every item is applied exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from services.scheduler.actors import caller_of
from services.scheduler.changes import Accepted, apply_changes, lock
from services.scheduler.metrics import OPERATION_ITEMS, Tally
from shared.db import campaigns as campaign_reads
from shared.db.campaign_filter import Where, add_filter
from shared.db.pool import fetchrow_replanned
from shared.db.rows import BulkOperationRow
from shared.db.sql import Queries
from shared.domain import bulk_operations, permissions
from shared.domain.bulk_operations import BulkAction, BulkStatus, ItemOutcome, ItemResult
from shared.domain.campaigns import ExecutionEffect
from shared.messaging.consumer import Handler, HandlerContext
from shared.messaging.contracts import (
    BulkActionRequest,
    BulkItemOutcome,
    BulkOperationProgress,
    BulkOperationRequest,
    Decoded,
    MessageType,
)
from shared.messaging.envelope import Actor, Cause
from shared.messaging.transaction import Transaction, transaction
from shared.runtime import Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
log = logging.getLogger(__name__)
COMPLETED = MessageType.BULK_OPERATION_COMPLETED


def request_handler(
    batch_size: int, wake_workers: Callable[[], None]
) -> Handler[BulkOperationRequest]:
    async def on_request(context: HandlerContext, message: Decoded[BulkOperationRequest]) -> None:
        if await accept_request(context, message, batch_size):

            async def wake() -> None:
                wake_workers()

            context.after_commit.append(wake)

    return on_request


async def accept_request(
    context: HandlerContext, message: Decoded[BulkOperationRequest], batch_size: int
) -> bool:
    """Record and resolve a request; apply it at once if it is one batch. True when batches
    are left for the workers (`advance`), to be woken once this transaction has committed."""
    request, envelope = message.payload, message.envelope
    actor = envelope.actor
    assert actor is not None  # the contract requires one
    connection, now = context.connection, context.clock.now()
    recorded = await connection.fetchrow(QUERIES["operation"], request.operation_id)
    if recorded is None:
        if not await connection.fetchval(QUERIES["actor_exists"], actor.user_id):
            _report(context, _unrecorded(request, "the actor is not a known user"),
                  envelope.correlation_id, now, COMPLETED)  # fmt: skip
            return False
        # The API's own command is in this database's outbox: asked for over HTTP, at the time
        # the API answered with. Anything else came from another system over Kafka.
        published = await fetchrow_replanned(
            connection, QUERIES["published_by_api"], str(request.operation_id), envelope.message_id
        )
        by_api = published[0]
        recorded = await connection.fetchrow(
            QUERIES["record_operation"],
            request.operation_id,
            actor.organization_id,
            actor.user_id,
            request.action.value,
            _selection(request),
            {"reset_completed": request.reset_completed},
            envelope.correlation_id,
            envelope.occurred_at if by_api else now,
            "http" if by_api else "kafka",
            now,
        )
    assert recorded is not None
    operation = BulkOperationRow.from_row(recorded)
    if operation.status is not BulkStatus.QUEUED:
        # A repeated request: it was applied once; say where it stands.
        _report(context, progress(operation), operation.correlation_id, now)
        return False
    # The record is what is applied: an id reused by someone else changes nothing.
    tally = Tally(OPERATION_ITEMS)
    more = await start(context, operation, recorded_request(operation), requester(operation),
                       now, batch_size, tally)  # fmt: skip
    context.after_commit.append(tally.committed)
    return more


async def start(
    tx: Transaction,
    operation: BulkOperationRow,
    request: BulkOperationRequest,
    actor: Actor,
    now: datetime,
    batch_size: int,
    tally: Tally,
) -> bool:
    """Resolve the selection into items, as the actor sees it now. An operation of one batch
    is applied here, in the request's transaction (its items go into `tally`, for the caller to
    count once it has committed); a larger one is left to the workers, which apply its batches
    side by side, and True is returned. (Applying the first of several batches here held the
    operation back from the workers until that batch committed, so the batches ran one after
    the other: a stop of 1,000 campaigns of 1,000 executions took two batches' time.)"""
    connection = tx.connection
    caller = await caller_of(connection, actor)
    if actor.organization_id is not None and caller.role is None:
        failed = await connection.fetchrow(
            QUERIES["fail"], operation.id, "the actor is not a member of the organization", now
        )
        assert failed is not None
        _report(tx, progress(BulkOperationRow.from_row(failed)), operation.correlation_id, now,
                COMPLETED)  # fmt: skip
        return False
    if request.campaign_ids is not None:
        await connection.execute(QUERIES["select_ids"], operation.id, request.campaign_ids)
    else:
        assert request.filter is not None
        where = Where()
        where.bind(operation.id)
        add_filter(where, caller, request.filter)
        await connection.execute(QUERIES["select_matching"].format(where=where.sql), *where.values)
    record = await connection.fetchrow(QUERIES["start"], operation.id, now)
    assert record is not None
    started = BulkOperationRow.from_row(record)
    _report(tx, progress(started), started.correlation_id, now)
    if started.total > batch_size:
        return True
    await apply_batch(tx, started, now, batch_size, tally)
    return False


async def advance(service: Service) -> int:
    """The periodic job: `bulk_workers` workers apply the pending batches, each batch in its own
    transaction. Returns the batches."""
    done = await asyncio.gather(*(_work(service) for _ in range(service.settings.bulk_workers)))
    return sum(done)


async def _work(service: Service) -> int:
    batches = 0
    batch_size = service.settings.bulk_batch_size
    while True:
        async with service.pool.acquire() as connection:
            running = await connection.fetch(QUERIES["running_operations"])
        applied = False
        for operation in map(BulkOperationRow.from_row, running):
            tally = Tally(OPERATION_ITEMS)
            async with transaction(service.pool, service.clock) as tx:
                applied = await apply_batch(tx, operation, service.clock.now(), batch_size, tally)
            tally.count()
            if applied:
                batches += 1
                break
        if not applied:
            return batches


def requester(operation: BulkOperationRow) -> Actor:
    return Actor(user_id=operation.requested_by, organization_id=operation.organization_id)


def recorded_request(operation: BulkOperationRow) -> BulkOperationRequest:
    selection = operation.selection
    return BulkOperationRequest(
        operation_id=operation.id,
        action=operation.action,
        campaign_ids=selection.get("campaign_ids"),
        filter=selection.get("filter"),
        reset_completed=operation.reset_completed,
    )


async def apply_batch(
    tx: Transaction,
    operation: BulkOperationRow,
    now: datetime,
    batch_size: int,
    tally: Tally,
) -> bool:
    """Apply the next batch of the operation; False when there was none to take (the rest is
    pending in another worker's hands, or the operation is finished). The batch's items go into
    `tally`."""
    connection = tx.connection
    ids = [r["campaign_id"] for r in await connection.fetch(
        QUERIES["claim_items"], operation.id, batch_size)]  # fmt: skip
    if not ids:
        return await _complete_if_finished(tx, operation, now)
    action = operation.action
    outcomes: dict[UUID, ItemOutcome] = {}
    accepted: list[Accepted] = []
    caller = await caller_of(connection, requester(operation))
    locked = await lock(connection, ids)
    readiness = {}
    if action is BulkAction.LAUNCH:
        readiness = await campaign_reads.readiness_of_many(connection, list(locked))
    reset = operation.reset_completed
    for campaign_id in ids:
        campaign = locked.get(campaign_id)
        state, decision = None, permissions.Decision.INVISIBLE
        if campaign is not None:
            state = campaign.state
            decision = permissions.decide(
                caller, campaign.ownership, bulk_operations.PERMISSION[action]
            )
        outcome = bulk_operations.outcome(
            action, state, decision, readiness.get(campaign_id), reset_completed=reset
        )
        outcomes[campaign_id] = outcome
        if outcome.change is not None:
            assert campaign is not None
            accepted.append(Accepted(campaign, outcome.change))
    correlation_id = operation.correlation_id
    affected = await apply_changes(
        tx, accepted, operation.requested_by, now, command=f"campaign.{action.value}",
        cause=Cause(requester(operation), correlation_id, operation.id),
        launched=action is BulkAction.LAUNCH,
    )  # fmt: skip
    cancelled = {
        a.row["id"]: affected[a.row["id"]]
        for a in accepted
        if a.change.executions is ExecutionEffect.CANCEL
    }
    order = list(outcomes)
    await connection.execute(
        QUERIES["record_outcomes"], operation.id, now, order,
        [outcomes[i].result.value for i in order], [outcomes[i].code for i in order],
        [outcomes[i].message for i in order], [cancelled.get(i, 0) for i in order],
    )  # fmt: skip
    # With the operation locked, the last batch to commit sees nothing pending and closes it.
    await connection.fetchrow(QUERIES["operation"], operation.id)
    more = await connection.fetchval(QUERIES["any_pending"], operation.id)
    results = [o.result for o in outcomes.values()]
    tally.add(action.value, (result.value for result in results))
    counted = await connection.fetchrow(
        QUERIES["count_batch"], operation.id, len(ids),
        results.count(ItemResult.SUCCEEDED), results.count(ItemResult.SKIPPED),
        results.count(ItemResult.FAILED), sum(cancelled.values()), now, not more,
    )  # fmt: skip
    assert counted is not None
    after = BulkOperationRow.from_row(counted)
    items = [
        BulkItemOutcome(campaign_id=i, result=o.result, code=o.code, message=o.message,
                        cancelled_executions=cancelled.get(i, 0))
        for i, o in outcomes.items()
    ]  # fmt: skip
    _report(tx, progress(after, items), correlation_id, now)
    if not more:
        _report(tx, progress(after), correlation_id, now, COMPLETED)
    return True


async def _complete_if_finished(
    tx: Transaction, operation: BulkOperationRow, now: datetime
) -> bool:
    """An operation with nothing left pending that is not closed yet (it selected no campaign
    at all) is closed here; one whose last items another worker holds is left to that one."""
    connection = tx.connection
    locked = await connection.fetchrow(QUERIES["operation"], operation.id)
    assert locked is not None
    if BulkOperationRow.from_row(locked).status is not BulkStatus.PROCESSING:
        return False
    if await connection.fetchval(QUERIES["any_pending"], operation.id):
        return False
    counted = await connection.fetchrow(
        QUERIES["count_batch"], operation.id, 0, 0, 0, 0, 0, now, True
    )
    assert counted is not None
    _report(tx, progress(BulkOperationRow.from_row(counted)), operation.correlation_id, now,
            COMPLETED)  # fmt: skip
    return True


def progress(
    operation: BulkOperationRow, items: list[BulkItemOutcome] | None = None
) -> BulkOperationProgress:
    return BulkOperationProgress.of_operation(
        operation, operation_id=operation.id, items=items or []
    )


def _unrecorded(request: BulkOperationRequest, reason: str) -> BulkOperationProgress:
    return BulkOperationProgress(
        operation_id=request.operation_id, action=request.action, status=BulkStatus.FAILED,
        total=0, processed=0, success_count=0, skipped_count=0, error_count=0,
        cancelled_executions=0, error_message=reason,
    )  # fmt: skip


def _selection(request: BulkOperationRequest) -> dict[str, Any]:
    if request.campaign_ids is not None:
        return {"campaign_ids": [str(i) for i in request.campaign_ids]}
    assert request.filter is not None
    return {"filter": json.loads(request.filter.model_dump_json(exclude_none=True))}


def _report(
    tx: Transaction,
    payload: BulkOperationProgress,
    correlation_id: UUID | None,
    now: datetime,
    message_type: MessageType = MessageType.BULK_OPERATION_PROGRESSED,
) -> None:
    """Progress answers the request: it carries the request's correlation id."""
    tx.outbox.emit(payload, key=payload.operation_id, cause=Cause(correlation_id=correlation_id),
                   type=message_type, at=now)  # fmt: skip


async def on_action_requested(context: HandlerContext, message: Decoded[BulkActionRequest]) -> None:
    """Bulk actions over contacts asked for over Kafka are recorded by the API (which owns bulk
    requests; services/api/bulk_actions/requests.py); their batches come to the scheduler's
    bulk_actions job as any action's do. Taken here without effect so as not to be
    dead-lettered."""
