"""Publishing a lifecycle command and waiting briefly for its outcome.

The command is written to the outbox in a transaction that first checks, as the scheduler will,
that the caller may do this at all (so an obvious 404 or 403 needs no round trip). The scheduler
applies it and answers on dripline.campaign.events under the command's correlation id; if that
takes longer than `command_wait_s`, the caller gets 202 with the command id instead.
"""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.api.auth import Principal, pool
from services.api.campaign_access import authorized
from services.api.problems import Problem
from services.api.replies import ReplyWaiter
from shared.domain import permissions
from shared.messaging.contracts import CampaignCommandRejected, Decoded, MessageType, Payload
from shared.messaging.envelope import Cause
from shared.messaging.transaction import transaction


class CommandAccepted(BaseModel):
    command_id: UUID
    status: str = "accepted"
    detail: str


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
    waiter: ReplyWaiter = request.app.state.replies
    correlation_id = uuid4()
    accepted = frozenset({outcome.value, MessageType.CAMPAIGN_COMMAND_REJECTED.value})
    async with waiter.expect(correlation_id, accepted) as reply:
        async with transaction(pool(request), service.clock) as tx:
            await authorized(tx.connection, who, campaign_id, action)
            envelope = tx.outbox.emit(
                payload,
                key=campaign_id,
                cause=Cause(who.actor, correlation_id),
                type=command,
            )
        try:
            decoded = await asyncio.wait_for(reply, service.settings.command_wait_s)
        except TimeoutError:
            body = CommandAccepted(
                command_id=envelope.message_id,
                detail=f"{command.value} was accepted and will be applied shortly",
            )
            return JSONResponse(body.model_dump(mode="json"), status_code=202)
    if isinstance(decoded.payload, CampaignCommandRejected):
        raise rejection_problem(decoded.payload)
    return decoded


def rejection_problem(rejection: CampaignCommandRejected) -> Problem:
    status = _REJECTION_STATUS.get(rejection.code, 409)
    extra = {}
    if rejection.unmet:
        extra["errors"] = [{"code": u.code, "message": u.detail} for u in rejection.unmet]
    title = "Permission denied" if status == 403 else "Command rejected"
    return Problem(status, rejection.code, title, rejection.detail, **extra)
