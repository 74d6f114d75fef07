"""Commands about a Telegram account, asked of the sender over Kafka (by the API on a user's
behalf, or by another system) and answered by an outcome event under the command's
correlation id (docs/architecture.md, "Request and reply").

account.check_health probes the account now, in the command's transaction, exactly as the
periodic check does (services/sender/accounts.py `check`), and answers account.checked with the
health found. A dead account (banned, or its login lost) is not probed, since only a person can
bring it back, nor one still cooling down from a flood wait; a lost command needs no recovery,
as the periodic check probes every live account anyway.
"""

from __future__ import annotations

from pathlib import Path

from services.sender import accounts
from services.sender.gateway import Gateway
from shared.db.sql import Queries
from shared.domain.accounts import AccountHealth
from shared.messaging.consumer import Handler, HandlerContext
from shared.messaging.contracts import AccountChecked, AccountHealthCheck, Decoded
from shared.messaging.envelope import Cause

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


def check_handler(gateway: Gateway) -> Handler[AccountHealthCheck]:
    async def on_check(context: HandlerContext, message: Decoded[AccountHealthCheck]) -> None:
        await check_now(context, message, gateway)

    return on_check


async def check_now(
    context: HandlerContext, message: Decoded[AccountHealthCheck], gateway: Gateway
) -> None:
    account_id, actor = message.payload.telegram_account_id, message.envelope.actor
    assert actor is not None  # the contract requires one
    connection, now = context.connection, context.clock.now()
    row = await connection.fetchrow(
        QUERIES["account_to_check"], account_id, actor.organization_id, actor.user_id
    )
    if row is None:
        answer = AccountChecked(
            telegram_account_id=account_id,
            result="not_found",
            status=None,
            detail="no such account that the actor may see",
        )
    elif AccountHealth(row["health_status"]) in accounts.DEAD:
        answer = AccountChecked(
            telegram_account_id=account_id,
            result="not_checked",
            status=row["health_status"],
            detail="not probed: a person must log in again or replace the account",
        )
    elif row["health_status"] == AccountHealth.COOLDOWN and row["cooldown_until"] > now:
        answer = AccountChecked(
            telegram_account_id=account_id,
            result="not_checked",
            status=row["health_status"],
            detail=f"not probed: cooling down until {row['cooldown_until'].isoformat()}",
        )
    else:
        entered = await accounts.check(connection, context.outbox, gateway, row, now)

        async def count() -> None:
            accounts.count_transitions([entered])

        context.after_commit.append(count)
        found = await connection.fetchrow(QUERIES["health"], account_id)
        assert found is not None  # locked above
        answer = AccountChecked(
            telegram_account_id=account_id,
            result="checked",
            status=found["health_status"],
            detail=found["health_detail"],
        )
    context.outbox.emit(answer, key=account_id, cause=Cause.of(message.envelope), at=now)
