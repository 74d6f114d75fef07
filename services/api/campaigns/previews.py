"""POST /campaign-flows/{id}/test-send (docs/campaigns.md, "Test send"): a send step rendered
for one contact and sent to the campaign account's own Saved Messages. The API checks what it
can at once (the caller may edit the campaign and see the contact, the node is a send step, the
campaign has a live account), then asks the sender with an account.test_send command and waits
for its account.test_sent answer (docs/architecture.md, "Request and reply"); the sender checks
everything again, paces test sends per account, renders and sends."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.api import commands
from services.api.auth import CurrentPrincipal
from services.api.campaign_access import authorized
from services.api.commands import CommandAccepted
from services.api.deps import CurrentClock, CurrentSettings, Database, Replies
from services.api.problems import Problem
from shared.db.sql import Queries
from shared.domain import flows
from shared.domain.permissions import Action
from shared.domain.previews import Refusal, RefusalCode, account_refusal, preview
from shared.messaging.contracts import AccountTestSend, AccountTestSent, MessageType

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter()


class TestSendRequest(BaseModel):
    node_id: str = Field(min_length=1, max_length=200, description="A send_message step's id")
    contact_id: UUID = Field(description="The contact to render the step for")


class TestSent(BaseModel):
    result: Literal["sent"] = "sent"
    campaign_id: UUID
    node_id: str
    contact_id: UUID
    telegram_account_id: UUID
    text: str = Field(description="The text (the caption, with an attachment) as rendered")
    attachment_id: UUID | None
    telegram_message_id: int | None
    sent_at: datetime | None


# The HTTP status of each refusal (the sender's or this module's).
_STATUS = {
    RefusalCode.CAMPAIGN_NOT_FOUND: 404,
    RefusalCode.PERMISSION_DENIED: 403,
    RefusalCode.CONTACT_NOT_FOUND: 404,
    RefusalCode.FLOW_INVALID: 422,
    RefusalCode.NODE_NOT_FOUND: 422,
    RefusalCode.NOT_A_SEND_STEP: 422,
    RefusalCode.MESSAGE_TOO_LONG: 422,
    RefusalCode.ATTACHMENT_NOT_FOUND: 422,
    RefusalCode.NO_ACCOUNT: 409,
    RefusalCode.ACCOUNT_UNAVAILABLE: 409,
    RefusalCode.RATE_LIMITED: 429,
}


def _problem(code: RefusalCode, detail: str, retry_after_s: int | None = None) -> Problem:
    status = _STATUS[code]
    extra: dict[str, Any] = {}
    if retry_after_s is not None:
        extra["retry_after_s"] = retry_after_s
    title = {404: "Not found", 403: "Permission denied", 409: "Test send refused",
             422: "Invalid test send", 429: "Too many requests"}[status]  # fmt: skip
    problem = Problem(status, code.value, title, detail, **extra)
    if retry_after_s is not None:
        problem.headers["Retry-After"] = str(retry_after_s)
    return problem


def _answered_refusal(answer: AccountTestSent) -> Problem:
    """The sender's refusal; a code this API does not know yet is still a 409, not a 500."""
    try:
        code = RefusalCode(answer.code or "")
    except ValueError:
        return Problem(409, answer.code or "test_send_refused", "Test send refused",
                       answer.detail or "")  # fmt: skip
    return _problem(code, answer.detail or "", answer.retry_after_s)


def _refused(refusal: Refusal) -> Problem:
    return _problem(refusal.code, refusal.detail, refusal.retry_after_s)


_ANSWERS: dict[int | str, dict[str, Any]] = {
    202: {"model": CommandAccepted, "description": "Not answered within the request"},
    403: {"description": "permission_denied (problem+json)"},
    404: {"description": "campaign_not_found, contact_not_found (problem+json)"},
    409: {"description": "campaign_has_no_account, account_unavailable (problem+json)"},
    422: {"description": "node_not_found, not_a_send_step, flow_invalid, message_too_long, "
                         "attachment_not_found, validation_error (problem+json)"},
    429: {"description": "test_send_rate_limited, with Retry-After (problem+json)"},
    502: {"description": "test_send_failed: Telegram refused it; `outcome` says how "
                         "(flood_wait, auth_lost, ...) (problem+json)"},
}  # fmt: skip


@router.post(
    "/{campaign_id}/test-send",
    response_model=TestSent,
    responses=_ANSWERS,
    summary="Send a step to the account's own Saved Messages, rendered for one contact",
)
async def send_test(
    campaign_id: UUID,
    body: TestSendRequest,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    replies: Replies,
) -> TestSent | JSONResponse:
    """Renders the send_message step `node_id` for the contact exactly as the sender will
    (variables with their fallbacks, the spintax that contact gets at that step, the
    attachment) and sends it from the campaign's account to that account's own Saved Messages,
    so a person sees it as it will arrive. It is no message to the contact: no execution,
    message record or statistic changes; the campaign's log records it (`test_sent`, or
    `test_send_failed`). Needs the right to edit the campaign, a contact in its organization, a
    connected and healthy account; at most 5 test sends per account per minute."""
    async with database.acquire() as connection:
        campaign = await authorized(connection, who, campaign_id, Action.EDIT)
        if campaign["deleted_at"] is not None:
            raise _problem(RefusalCode.CAMPAIGN_NOT_FOUND, "the campaign is deleted")
        account_id = campaign["telegram_account_id"]
        account = await connection.fetchrow(QUERIES["account"], account_id) if account_id else None
        contact = await connection.fetchrow(
            QUERIES["contact"], body.contact_id, campaign["organization_id"],
            who.caller.organization_id, who.caller.user_id,
        )  # fmt: skip
    if contact is None:
        raise _problem(RefusalCode.CONTACT_NOT_FOUND, "no such contact in the campaign's context")
    flow, _ = flows.validate(campaign["flow"])
    shown = preview(flow, body.node_id, str(body.contact_id), {})
    if isinstance(shown, Refusal) and shown.code is not RefusalCode.MESSAGE_TOO_LONG:
        raise _refused(shown)  # the length depends on the contact's values: the sender's call
    refused = account_refusal(
        account["health_status"] if account else None,
        bool(account and account["deleted"]),
        account["cooldown_until"] if account else None,
        clock.now(),
    )
    if refused is not None:
        raise _refused(refused)
    command = AccountTestSend(
        telegram_account_id=account_id,
        campaign_id=campaign_id,
        node_id=body.node_id,
        contact_id=body.contact_id,
    )
    asked = await commands.ask(
        replies, database, clock, command, key=account_id, actor=who.actor,
        outcomes=(MessageType.ACCOUNT_TEST_SENT,), wait_s=settings.command_wait_s,
    )  # fmt: skip
    if asked.outcome is None:
        return commands.accepted(
            asked.command,
            "the test send will go shortly; the campaign's log records it",
            f"/campaign-flows/{campaign_id}/logs?event=test_sent&event=test_send_failed",
        )
    answer = asked.outcome.payload
    assert isinstance(answer, AccountTestSent)
    if answer.result == "refused":
        raise _answered_refusal(answer)
    if answer.result == "failed":
        problem = Problem(
            502, "test_send_failed", "Telegram refused the test send", answer.detail or "",
            outcome=answer.code,
        )  # fmt: skip
        if answer.retry_after_s is not None:
            problem.extra["retry_after_s"] = answer.retry_after_s
            problem.headers["Retry-After"] = str(answer.retry_after_s)
        raise problem
    return TestSent(
        campaign_id=campaign_id,
        node_id=answer.node_id,
        contact_id=answer.contact_id,
        telegram_account_id=answer.telegram_account_id,
        text=answer.text or "",
        attachment_id=answer.attachment_id,
        telegram_message_id=answer.telegram_message_id,
        sent_at=answer.sent_at,
    )
