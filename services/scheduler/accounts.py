"""What a Telegram account's health means for campaigns: a dead account (auth lost, session
conflict, banned) fails the campaigns that use it, with the reason shown on the campaign (spec
004 "Failed"). Their unfinished executions are interrupted (paused, with the reason), not
finished: a relaunch once the account is fixed or changed continues them (docs/campaigns.md)."""

from __future__ import annotations

from pathlib import Path

from services.scheduler import breakers
from services.scheduler.changes import status_changed
from shared.db.sql import Queries
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    AccountChecked,
    AccountHealthChanged,
    AccountLoginProgressed,
    AccountTestSent,
    Decoded,
)
from shared.messaging.envelope import Cause

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
DEAD = {
    "auth_lost": "lost its login",
    "session_conflict": "is used from another place too (session conflict)",
    "banned": "is banned",
}


def dead_account_reason(status: str, detail: str | None) -> str:
    return f"The Telegram account {DEAD[status]}: {detail or status}"


async def on_health_changed(
    context: HandlerContext, message: Decoded[AccountHealthChanged]
) -> None:
    event = message.payload
    # Every health change may move the fleet breaker of the account's context (evaluated once
    # per batch, before it commits: breakers.py).
    await breakers.on_health_changed(context, message)
    if event.status not in DEAD:
        return
    now = context.clock.now()
    reason = dead_account_reason(event.status, event.detail)
    failed = await context.connection.fetch(
        QUERIES["fail_account_campaigns"], event.telegram_account_id, reason, now
    )
    if not failed:
        return
    await context.connection.execute(
        QUERIES["interrupt_account_executions"], [r["id"] for r in failed], reason, now
    )
    for row in failed:
        status_changed(
            context.outbox,
            row["id"],
            previous_status=row["previous_status"],
            status="failed",
            previous_enabled=row["enabled"],
            enabled=row["enabled"],
            command=message.envelope.type,
            # Its own conversation: the account's event was not a request for this.
            cause=Cause(causation_id=message.envelope.message_id),
            at=now,
        )


async def on_checked(context: HandlerContext, message: Decoded[AccountChecked]) -> None:
    """The answer to a health check is for whoever asked; a transition the check made is its
    own account.health_changed event, handled above. Taken so as not to be dead-lettered."""


async def on_test_sent(context: HandlerContext, message: Decoded[AccountTestSent]) -> None:
    """A test send's answer is for whoever asked: it touches no campaign or execution. Taken so
    as not to be dead-lettered."""


async def on_login_progressed(
    context: HandlerContext, message: Decoded[AccountLoginProgressed]
) -> None:
    """A login's step is answered to whoever asked; an account logged in again in place is its
    own account.health_changed. Taken so as not to be dead-lettered."""
