"""Publishing a command and waiting briefly for the outcome event that answers it.

`ask` is the API's one request/reply primitive (docs/architecture.md, "Request and reply"): the
command is written to the outbox in a transaction that may first check, as its consumer will,
that the caller may do this at all (so an obvious 404 or 403 needs no round trip); its consumer
applies it and answers with an outcome event under the command's correlation id, which the
`ReplyWaiter` hands back. If that takes longer than the wait, the caller answers 202 with the
command id and a location to poll (`accepted`).

`send` is `ask` for a campaign lifecycle command: the scheduler answers on
dripline.campaign.events, or rejects the command with `campaign.command_rejected`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from uuid import UUID, uuid4

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api.auth import Principal, pool
from services.api.campaign_access import authorized
from services.api.deps import Pool
from services.api.problems import Problem
from services.api.replies import ReplyWaiter
from shared.db.pool import DbConnection
from shared.domain import permissions
from shared.domain.clock import Clock
from shared.messaging.contracts import CampaignCommandRejected, Decoded, MessageType, Payload
from shared.messaging.envelope import Actor, Cause, Envelope
from shared.messaging.transaction import transaction


class CommandAccepted(BaseModel):
    command_id: UUID
    status: str = "accepted"
    detail: str


@dataclass(frozen=True)
class Asked:
    """A published command and the event that answered it (None: not within the wait)."""

    command: Envelope
    outcome: Decoded[Payload] | None


async def ask(
    waiter: ReplyWaiter,
    database: Pool,
    clock: Clock,
    payload: Payload,
    *,
    key: UUID,
    actor: Actor,
    outcomes: Iterable[MessageType],
    wait_s: float,
    type: MessageType | None = None,
    check: Callable[[DbConnection], Awaitable[None]] | None = None,
    correlation_id: UUID | None = None,
) -> Asked:
    """Publish `payload` as a command (after `check`, in its transaction) and wait up to
    `wait_s` for the first event of one of the `outcomes` types under its correlation id."""
    correlation_id = correlation_id or uuid4()
    async with waiter.expect(correlation_id, outcomes) as reply:
        async with transaction(database, clock) as tx:
            if check is not None:
                await check(tx.connection)
            envelope = tx.outbox.emit(
                payload, key=key, cause=Cause(actor, correlation_id), type=type
            )
        if wait_s <= 0:
            return Asked(envelope, None)
        try:
            return Asked(envelope, await asyncio.wait_for(reply, wait_s))
        except TimeoutError:
            return Asked(envelope, None)


def accepted(command: Envelope, detail: str, location: str) -> JSONResponse:
    """202: the command was published and is not answered yet; `location` is where to poll."""
    body = CommandAccepted(command_id=command.message_id, detail=detail)
    return JSONResponse(
        body.model_dump(mode="json"), status_code=202, headers={"Location": location}
    )


# Rejection codes whose HTTP status is not 409 (a status conflict).
_REJECTION_STATUS = {"campaign_not_found": 404, "permission_denied": 403}


async def send(
    request: Request,
    who: Principal,
    campaign_id: UUID,
    command: MessageType,
    payload: Payload,
    action: permissions.Action,
    outcome: MessageType,
) -> Decoded[Payload] | JSONResponse:
    """The event that answers the command, or a 202 response; a rejection raises a Problem."""
    service = request.app.state.service

    async def permitted(connection: DbConnection) -> None:
        await authorized(connection, who, campaign_id, action)

    asked = await ask(
        request.app.state.replies,
        pool(request),
        service.clock,
        payload,
        key=campaign_id,
        actor=who.actor,
        outcomes=(outcome, MessageType.CAMPAIGN_COMMAND_REJECTED),
        wait_s=service.settings.command_wait_s,
        type=command,
        check=permitted,
    )
    if asked.outcome is None:
        return accepted(
            asked.command,
            f"{command.value} was accepted and will be applied shortly",
            f"/campaign-flows/{campaign_id}",
        )
    if isinstance(asked.outcome.payload, CampaignCommandRejected):
        raise rejection_problem(asked.outcome.payload)
    return asked.outcome


def rejection_problem(rejection: CampaignCommandRejected) -> Problem:
    status = _REJECTION_STATUS.get(rejection.code, 409)
    extra = {}
    if rejection.unmet:
        extra["errors"] = [{"code": u.code, "message": u.detail} for u in rejection.unmet]
    title = "Permission denied" if status == 403 else "Command rejected"
    return Problem(status, rejection.code, title, rejection.detail, **extra)
