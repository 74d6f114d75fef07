"""The inbox's commands on dripline.account.commands (docs/inbox.md): a person's answer, sent
as the account, and the read receipt of a conversation.

`conversation.send`: the API recorded the answer queued and took the conversation over. Here,
in the command's transaction, the account is locked and its pace read as a step's send reads
it (shared.domain.pacing `next_send_at`: health, cooldown, the gap since the last send; the
person answered us, so no new-peer budget is spent); the answer's turn is reserved in the
account's pace. After the commit it waits for that turn, goes to Telegram, and is recorded sent
(the conversation shows it) or failed with the reason. An answer that may not go (the account
or contact deleted, the person listed, an account that needs a person, or a turn further away
than ANSWER_WAIT_MAX_S) is failed at once with the reason, for the person to see.

`conversation.read`: messages.readHistory through the account, after the commit; best effort
(a failure is logged, not retried)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from services.sender.gateway import Account, Delivery, Gateway, GatewayError
from services.sender.reservations import Pace
from services.sender.staging import peer_of
from shared.db.sql import Queries
from shared.domain.clock import Clock
from shared.domain.pacing import CannotSend, Pacing, next_send_at
from shared.messaging.consumer import Handler, HandlerContext
from shared.messaging.contracts import ConversationRead, ConversationSend, Decoded
from shared.messaging.transaction import transaction

log = logging.getLogger(__name__)
QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
ANSWER_WAIT_MAX_S = 120.0  # an answer waits at most this long for its account's turn


def send_handler(
    gateway: Gateway, pool: Callable[[], asyncpg.Pool[Any]]
) -> Handler[ConversationSend]:
    """`pool` is a callable that returns the service's pool (it exists once the service runs)."""

    async def on_send(context: HandlerContext, message: Decoded[ConversationSend]) -> None:
        command = message.payload
        connection, clock = context.connection, context.clock
        now = clock.now()
        account = await connection.fetchrow(QUERIES["lock_account"], command.telegram_account_id)
        answer = await connection.fetchrow(
            QUERIES["lock_answer"], command.message_id, command.telegram_account_id
        )
        if account is None or answer is None or answer["status"] != "queued":
            return  # gone, or already answered (a redelivered command)
        refused = _refusal(account, answer, now)
        if isinstance(refused, str):
            await connection.execute(QUERIES["mark_failed"], answer["id"], "not_sent", refused)
            log.info("answer %s not sent: %s", answer["id"], refused)
            return
        goes_at = refused
        await connection.execute(QUERIES["reserve"], account["id"], goes_at)
        to = Account(account["id"], account["session_kind"], account["simulation"] or {})
        peer = peer_of(answer)
        text, random_id, message_id = answer["body"], answer["random_id"], answer["id"]

        async def send() -> None:
            wait = (goes_at - clock.now()).total_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                result: Delivery | GatewayError = await gateway.send(
                    to, peer, text, random_id, clock.now()
                )
            except GatewayError as error:
                result = error
            await _record(pool(), clock, message_id, result)

        context.after_commit.append(send)

    return on_send


def _refusal(account: asyncpg.Record, answer: asyncpg.Record, now: datetime) -> datetime | str:
    """When the answer may go, or why it may not."""
    if account["deleted_at"] is not None:
        return "account_deleted"
    if answer["contact_deleted_at"] is not None:
        return "contact_deleted"
    if answer["do_not_contact"]:
        return "do_not_contact"
    pace = Pace(
        account,
        Pacing.from_settings(account["pacing"], account["daily_quota"]),
        account["last_send_at"],
        account["sent_today"],
        account["quota_day"],
    ).pace(now.date())
    pacing = Pacing.from_settings(account["pacing"], account["daily_quota"])
    try:
        goes_at = next_send_at(pacing, pace, now, new_peer=False, key=str(answer["id"]))
    except CannotSend as exc:
        return str(exc)
    if goes_at - now > timedelta(seconds=ANSWER_WAIT_MAX_S):
        return f"the account may not send before {goes_at.isoformat()}"
    return goes_at


async def _record(
    pool: asyncpg.Pool[Any], clock: Clock, message_id: Any, result: Delivery | GatewayError
) -> None:
    async with transaction(pool, clock) as tx:
        if isinstance(result, Delivery):
            await tx.connection.execute(
                QUERIES["mark_sent"], message_id, result.telegram_message_id, result.sent_at
            )
        else:
            await tx.connection.execute(
                QUERIES["mark_failed"], message_id, type(result).__name__, result.reason
            )


def read_handler(gateway: Gateway) -> Handler[ConversationRead]:
    async def on_read(context: HandlerContext, message: Decoded[ConversationRead]) -> None:
        command = message.payload
        row = await context.connection.fetchrow(
            QUERIES["conversation"], command.conversation_id, command.telegram_account_id
        )
        if row is None or row["account_deleted_at"] is not None:
            return
        account = Account(row["telegram_account_id"], row["session_kind"], row["simulation"] or {})
        peer = peer_of(row)
        clock = context.clock

        async def read() -> None:
            try:
                await gateway.read_history(account, peer, clock.now())
            except GatewayError as error:
                log.info("read receipt for %s not sent: %s", command.conversation_id, error)

        context.after_commit.append(read)

    return on_read
