"""bulk_action.requested (dripline.bulk.commands, issue 16): another system asks for a bulk
action over contacts. The API records it as `POST /bulk-actions` does (routes.record: the same
parameters, selection, plan and permission checks, here in the consumer's transaction with its
inbox dedupe) and answers with bulk_action.changed (the action as recorded, with the command's
correlation id); the scheduler's job then releases its batches and emits bulk_action.progressed
and bulk_action.completed, as for any bulk action. A request that does not hold is answered
with bulk_action.rejected (the HTTP problem's code and field errors), never dead-lettered; one
that breaks the contract is dead-lettered by the consumer. A repeated action_id is recorded
once (answered again with the action as it stands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from services.api.auth import Principal
from services.api.bulk_actions.models import BulkActionCreate
from services.api.bulk_actions.routes import record
from services.api.problems import Problem
from shared.db.sql import Queries
from shared.domain.permissions import Caller, Role
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    BulkActionProgress,
    BulkActionRejected,
    BulkActionRequest,
    BulkOperationRequest,
    Decoded,
    MessageType,
)
from shared.messaging.envelope import Cause

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


async def on_requested(context: HandlerContext, message: Decoded[BulkActionRequest]) -> None:
    envelope, payload = message.envelope, message.payload
    actor = envelope.actor
    assert actor is not None  # the contract requires one
    connection, now, cause = context.connection, context.clock.now(), Cause.of(envelope)
    try:
        existing = await connection.fetchrow(QUERIES["recorded"], payload.action_id)
        if existing is None:
            who = await _principal(context, actor.user_id, actor.organization_id)
            body = _body(payload)
            # A savepoint: a refusal found after something was written leaves nothing behind.
            async with connection.transaction():
                await record(connection, who, payload.action_id, body, now)
    except Problem as problem:
        rejected = BulkActionRejected(
            action_id=payload.action_id,
            code=problem.code,
            message=problem.detail,
            errors=[_error(e) for e in problem.extra.get("errors", [])],
        )
        context.outbox.emit(rejected, key=payload.action_id, cause=cause, at=now)
        return
    row = await connection.fetchrow(QUERIES["recorded"], payload.action_id)
    assert row is not None
    context.outbox.emit(
        BulkActionProgress.of(row),
        key=payload.action_id,
        cause=cause,
        type=MessageType.BULK_ACTION_CHANGED,
        at=now,
    )


async def on_operation_requested(
    context: HandlerContext, message: Decoded[BulkOperationRequest]
) -> None:
    """Bulk operations over campaigns are the scheduler's (the same topic): taken here without
    effect so as not to be dead-lettered by the API's consumer."""


async def _principal(context: HandlerContext, user_id: Any, organization_id: Any) -> Principal:
    """The actor as an API caller: a member of the organization its command names, or itself
    in personal mode (403 not_a_member otherwise, as over HTTP)."""
    email = await context.connection.fetchval(QUERIES["email"], user_id)
    if email is None:
        raise Problem(403, "not_a_member", "Permission denied", "unknown actor")
    if organization_id is None:
        return Principal(Caller(user_id, None, None), email)
    member = await context.connection.fetchrow(QUERIES["membership"], organization_id, user_id)
    if member is None:
        detail = "the actor is not a member of the organization its command names"
        raise Problem(403, "not_a_member", "Permission denied", detail)
    caller = Caller(
        user_id,
        organization_id,
        Role(member["role"]),
        admin_view_enabled=member["admin_view_enabled"],
    )
    return Principal(caller, email)


def _body(payload: BulkActionRequest) -> BulkActionCreate:
    raw = payload.model_dump(mode="json", exclude={"action_id"})
    try:
        return BulkActionCreate.model_validate(raw)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        raise Problem(
            422, "validation_error", "Invalid request", "the request does not hold", errors=errors
        ) from exc


def _error(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('field', '')}: {error.get('message', '')}"
    return str(error)
