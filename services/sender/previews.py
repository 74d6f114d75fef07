"""account.test_send (docs/campaigns.md, "Test send"): a campaign's send step rendered for one
contact exactly as the sender renders it for that contact's execution (variables with their
fallbacks, the spintax chosen for that contact and step, the attachment), and sent to the
account's own Saved Messages (InputPeerSelf; the simulator records a message to the account
itself), so a person sees it as it will arrive. Answered by account.test_sent under the
command's correlation id.

In the command's transaction: the actor's right to edit the campaign is checked as for HTTP,
the account (the campaign's) is locked and must be live, the contact must be in the campaign's
organization, the step must be a send step that renders within Telegram's limits, and the
account may have sent at most shared.domain.previews.TEST_SENDS_PER_WINDOW tests in the last
TEST_SEND_WINDOW. Then it is sent, within the transaction (as a health check probes), with a
random_id derived from the command's id: a command redelivered after a crash before the commit
is recognised by Telegram (or the simulator) and not sent twice. The campaign's log records it
(`test_sent`, or `test_send_failed` with the reason); nothing else changes: no execution, no
message record, no statistic, no pacing of the account's campaign sends, no health change (a
failure the test meets is reported; the periodic check finds the account's state)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg

from services.sender.gateway import (
    Account,
    Delivery,
    Gateway,
    GatewayError,
    Media,
    RetryAfter,
    saved_messages,
    send_outcome,
)
from services.sender.staging import contact_values, random_id_for
from shared.db.pool import DbConnection
from shared.db.rows import CampaignRow
from shared.db.sql import Queries
from shared.domain import flows, permissions
from shared.domain.previews import (
    TEST_SEND_WINDOW,
    Preview,
    Refusal,
    RefusalCode,
    account_refusal,
    preview,
    rate_refusal,
)
from shared.messaging.consumer import Handler, HandlerContext
from shared.messaging.contracts import AccountTestSend, AccountTestSent, Decoded
from shared.messaging.envelope import Actor, Cause

log = logging.getLogger(__name__)
QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


def test_send_handler(gateway: Gateway) -> Handler[AccountTestSend]:
    async def on_test_send(context: HandlerContext, message: Decoded[AccountTestSend]) -> None:
        actor = message.envelope.actor
        assert actor is not None  # the contract requires one
        answer = await send_test(
            context.connection, gateway, message.payload, actor, message.envelope.message_id,
            context.clock.now(),
        )  # fmt: skip
        context.outbox.emit(
            answer,
            key=message.payload.telegram_account_id,
            cause=Cause.of(message.envelope),
            at=context.clock.now(),
        )

    return on_test_send


async def send_test(
    connection: DbConnection,
    gateway: Gateway,
    command: AccountTestSend,
    actor: Actor,
    command_id: UUID,
    now: datetime,
) -> AccountTestSent:
    """Check, render and send one test; the answer says what came of it."""
    fields = {
        "telegram_account_id": command.telegram_account_id,
        "campaign_id": command.campaign_id,
        "node_id": command.node_id,
        "contact_id": command.contact_id,
    }
    ready = await _ready(connection, command, actor, now)
    if isinstance(ready, Refusal):
        return AccountTestSent(
            **fields, result="refused", code=ready.code.value, detail=ready.detail,
            retry_after_s=ready.retry_after_s,
        )  # fmt: skip
    account, shown, media = ready
    random_id = random_id_for(f"test-send:{command_id}")
    details: dict[str, object] = {
        "telegram_account_id": str(command.telegram_account_id),
        "requested_by": str(actor.user_id),
        "attachment_id": shown.attachment_id,
    }
    try:
        delivery = await gateway.send(
            account, saved_messages(command.contact_id), shown.text, random_id, now, media
        )
    except GatewayError as error:
        outcome = send_outcome(error)
        details["outcome"] = outcome
        await connection.execute(
            QUERIES["log"], command.campaign_id, command.contact_id, command.node_id,
            "test_send_failed", "failed", f"test send failed: {error.reason}",
            details, now,
        )  # fmt: skip
        wait = int(error.seconds) if isinstance(error, RetryAfter) else None
        return AccountTestSent(
            **fields, result="failed", code=outcome, detail=error.reason, retry_after_s=wait,
            text=shown.text, attachment_id=_uuid(shown.attachment_id),
        )  # fmt: skip
    details["telegram_message_id"] = delivery.telegram_message_id
    await connection.execute(
        QUERIES["log"], command.campaign_id, command.contact_id, command.node_id, "test_sent",
        "ok", shown.text, details, now,
    )  # fmt: skip
    return _sent(fields, shown, delivery)


async def _ready(
    connection: DbConnection, command: AccountTestSend, actor: Actor, now: datetime
) -> tuple[Account, Preview, Media | None] | Refusal:
    campaign = await connection.fetchrow(QUERIES["campaign"], command.campaign_id)
    if campaign is None or campaign["deleted_at"] is not None:
        return Refusal(RefusalCode.CAMPAIGN_NOT_FOUND, "no such campaign")
    decision = permissions.decide(
        await _caller(connection, actor),
        CampaignRow.from_row(campaign).ownership,
        permissions.Action.EDIT,
    )
    if decision is permissions.Decision.INVISIBLE:
        return Refusal(RefusalCode.CAMPAIGN_NOT_FOUND, "no such campaign")
    if decision is permissions.Decision.FORBIDDEN:
        return Refusal(RefusalCode.PERMISSION_DENIED, "the actor may not edit this campaign")
    if campaign["telegram_account_id"] is None:
        return Refusal(RefusalCode.NO_ACCOUNT, "the campaign has no Telegram account")
    if campaign["telegram_account_id"] != command.telegram_account_id:
        return Refusal(RefusalCode.ACCOUNT_UNAVAILABLE, "the account is not the campaign's")
    row = await connection.fetchrow(QUERIES["lock_account"], command.telegram_account_id)
    if row is None:
        return Refusal(RefusalCode.NO_ACCOUNT, "the campaign has no Telegram account")
    refused = account_refusal(
        row["health_status"], row["deleted_at"] is not None, row["cooldown_until"], now
    )
    if refused is not None:
        return refused
    contact = await connection.fetchrow(
        QUERIES["contact"], command.contact_id, campaign["organization_id"], actor.user_id
    )
    if contact is None:
        return Refusal(RefusalCode.CONTACT_NOT_FOUND, "no such contact in the campaign's context")
    flow, _ = flows.validate(campaign["flow"])
    shown = preview(flow, command.node_id, str(command.contact_id), contact_values(contact))
    if isinstance(shown, Refusal):
        return shown
    media = None
    if shown.attachment_id is not None:
        media = await _media(connection, shown.attachment_id)
        if media is None:
            return Refusal(RefusalCode.ATTACHMENT_NOT_FOUND, "the step's attachment is gone")
    recent = await connection.fetch(
        QUERIES["recent"], command.telegram_account_id, now - TEST_SEND_WINDOW
    )
    refused = rate_refusal([r["created_at"] for r in recent], now)
    if refused is not None:
        return refused
    account = Account(row["id"], row["session_kind"], row["simulation"] or {})
    return account, shown, media


async def _caller(connection: DbConnection, actor: Actor) -> permissions.Caller:
    """As the scheduler reads a command's actor: no role outside the named organization."""
    if actor.organization_id is None:
        return permissions.Caller(actor.user_id, None, None)
    row = await connection.fetchrow(QUERIES["caller_context"], actor.organization_id, actor.user_id)
    if row is None:
        return permissions.Caller(actor.user_id, actor.organization_id, None)
    return permissions.Caller(
        actor.user_id,
        actor.organization_id,
        permissions.Role(row["role"]),
        admin_view_enabled=row["admin_view_enabled"],
    )


async def _media(connection: DbConnection, attachment_id: str) -> Media | None:
    row: asyncpg.Record | None = await connection.fetchrow(
        QUERIES["attachment"], UUID(attachment_id)
    )
    if row is None:
        return None
    return Media(row["id"], row["kind"], row["filename"], row["content_type"], row["data"])


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value is not None else None


def _sent(fields: dict[str, object], shown: Preview, delivery: Delivery) -> AccountTestSent:
    return AccountTestSent.model_validate(
        {
            **fields,
            "result": "sent",
            "text": shown.text,
            "attachment_id": _uuid(shown.attachment_id),
            "telegram_message_id": delivery.telegram_message_id,
            "sent_at": delivery.sent_at,
        }
    )
