"""Replies and read receipts: a reply marks the contact as responded and wakes its
wait_for_reply; a read or a reply is the only delivery confirmation Telegram gives.

What was detected is returned as a Detected, for the caller to count once its transaction has
committed (a rolled-back transaction gets the same updates again). `replies_and_reads` is the
periodic job that does both."""

from __future__ import annotations

from collections import Counter as Tally
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from services.sender import executions
from services.sender.gateway import Gateway, Incoming
from services.sender.staging import UNFINISHED, load
from services.sender.writer import save
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import interpreter
from shared.messaging.contracts import MessageDelivered, ReplyReceived
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction
from shared.runtime import Job, Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

REPLIES = Counter("dripline_replies_detected_total", "Replies to our messages, recorded")
DELIVERIES = Counter(
    "dripline_deliveries_detected_total",
    "Outgoing messages confirmed delivered, by what confirmed them (a read or a reply)",
    ["via"],
)
for _via in ("read", "reply"):
    DELIVERIES.labels(_via)


@dataclass
class Detected:
    updates: int = 0
    replies: int = 0
    delivered: Tally[str] = field(default_factory=Tally)

    def count(self) -> None:
        """Into the metrics: call once the transaction that recorded them has committed."""
        REPLIES.inc(self.replies)
        for via, messages in self.delivered.items():
            DELIVERIES.labels(via).inc(messages)


def replies_and_reads(gateway: Gateway) -> Job:
    """The periodic job: the updates each adapter has gathered, applied in one transaction and
    counted once it has committed. Returns how many there were."""

    async def job(service: Service) -> int:
        async with transaction(service.pool, service.clock) as tx:
            detected = await apply_updates(tx.connection, tx.outbox, gateway, service.clock.now())
        detected.count()
        return detected.updates

    return job


async def apply_updates(
    connection: DbConnection, outbox: Outbox, gateway: Gateway, now: datetime
) -> Detected:
    incoming = await gateway.updates(connection, now)
    detected = Detected(updates=len(incoming))
    for update in incoming:
        await apply(connection, outbox, update, now, detected)
    return detected


async def apply(
    connection: DbConnection, outbox: Outbox, update: Incoming, now: datetime, detected: Detected
) -> None:
    sent = await connection.fetchrow(
        QUERIES["message_by_random_id"], update.account_id, update.random_id
    )
    if sent is None or sent["execution_id"] is None:
        return  # not one of ours (or from before the records): nothing to steer
    confirmed = await connection.fetch(
        QUERIES["confirm_delivery"],
        sent["execution_id"],
        sent["telegram_message_id"],
        update.at,
        update.kind,
    )
    if confirmed:
        detected.delivered[update.kind] += len(confirmed)
        delivered = MessageDelivered(
            campaign_id=sent["campaign_id"],
            execution_id=sent["execution_id"],
            message_ids=[r["id"] for r in confirmed],
            via=update.kind,
        )
        outbox.emit(delivered, key=sent["campaign_id"], at=now)
    if update.kind != "reply":
        return
    reply_id = await connection.fetchval(
        QUERIES["record_reply"],
        sent["campaign_id"],
        sent["execution_id"],
        sent["contact_id"],
        update.account_id,
        update.text,
        update.at,
    )
    detected.replies += 1
    received = ReplyReceived(
        message_id=reply_id,
        execution_id=sent["execution_id"],
        campaign_id=sent["campaign_id"],
        contact_id=sent["contact_id"],
        telegram_account_id=update.account_id,
    )
    outbox.emit(received, key=sent["campaign_id"], at=now)
    row = await executions.lock(connection, sent["execution_id"])
    if row is None or row["status"] not in UNFINISHED:
        return
    await _steer(connection, outbox, row, update, now)


async def _steer(
    connection: DbConnection, outbox: Outbox, row: Any, update: Incoming, now: datetime
) -> None:
    loaded = load(row)
    if loaded.flow is None:
        return
    handling = (row["settings"] or {}).get("response_handling", {})
    step = interpreter.advance(
        loaded.flow,
        loaded.state,
        interpreter.Replied(update.at),
        stop_on_reply=bool(handling.get("stop_on_reply", True)),
    )
    tag = handling.get("reply_tag")
    if tag:
        step = replace(
            step,
            state=replace(step.state, tags=step.state.tags | {tag}),
            tags_added=step.tags_added | {tag},
        )
    # Even when nothing is to be done now (Stay), the reply is saved: conditions and later
    # waits read it.
    await save(connection, outbox, loaded, step, now)
