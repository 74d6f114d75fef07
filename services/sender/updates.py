"""Replies and read receipts: a reply marks the contact as responded and wakes its
wait_for_reply; a read or a reply is the only delivery confirmation Telegram gives. A reply
that says one of the organization's opt-out phrases (shared.domain.do_not_contact) lists the
person on the do-not-contact list and ends every execution of theirs, in the transaction that
records the reply (docs/do-not-contact.md).

What was detected is returned as a Detected, for the caller to count once its transaction has
committed (a rolled-back transaction gets the same updates again). `replies_and_reads` is the
periodic job that does both."""

from __future__ import annotations

import logging
from collections import Counter as Tally
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from services.sender import executions
from services.sender.gateway import Gateway, Incoming
from services.sender.staging import load
from services.sender.writer import save
from shared.db.pool import DbConnection
from shared.db.rows import ExecutionRow
from shared.db.sql import Queries
from shared.domain import interpreter
from shared.domain.crm import COMPANY_REPLIED, CompanyOnReply, on_company_reply
from shared.domain.do_not_contact import (
    DEFAULT_OPT_OUT_PHRASES,
    Kind,
    Reason,
    Source,
    contact_keys,
    opts_out,
)
from shared.domain.executions import BETWEEN_STEPS, ExecutionStatus
from shared.messaging.contracts import (
    ConversationMessageReceived,
    DoNotContactAdded,
    ExecutionProgressed,
    MessageDelivered,
    ReplyReceived,
)
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction
from shared.runtime import Job, Service

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
log = logging.getLogger(__name__)

REPLIES = Counter("dripline_replies_detected_total", "Replies to our messages, recorded")
DELIVERIES = Counter(
    "dripline_deliveries_detected_total",
    "Outgoing messages confirmed delivered, by what confirmed them (a read or a reply)",
    ["via"],
)
for _via in ("read", "reply"):
    DELIVERIES.labels(_via)
OPT_OUTS = Counter("dripline_opt_outs_detected_total", "Replies that opted out, recorded")


@dataclass
class Detected:
    updates: int = 0
    replies: int = 0
    opt_outs: int = 0
    delivered: Tally[str] = field(default_factory=Tally)

    def count(self) -> None:
        """Into the metrics: call once the transaction that recorded them has committed."""
        REPLIES.inc(self.replies)
        OPT_OUTS.inc(self.opt_outs)
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
    phrases = sent["opt_out_phrases"]
    opted_out = update.kind == "reply" and opts_out(
        update.text, DEFAULT_OPT_OUT_PHRASES if phrases is None else phrases
    )
    colleagues = await _lock_company(connection, sent, update, opted_out)
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
    if colleagues:
        await _company_replied(connection, outbox, sent, colleagues, now)
    if opted_out:
        await _opt_out(connection, outbox, sent, now)
        detected.opt_outs += 1
    else:
        row = await executions.lock(connection, sent["execution_id"])
        # A conversation a person took over (docs/inbox.md): the reply does not steer the flow.
        if row is not None and row.status in BETWEEN_STEPS and row.taken_over_at is None:
            await _steer(connection, outbox, row, update, now)
    await _in_conversation(connection, outbox, sent, update, reply_id, now)


def _company_mode(sent: Any) -> CompanyOnReply:
    try:
        return CompanyOnReply(sent["company_on_reply"] or CompanyOnReply.OFF)
    except ValueError:
        return CompanyOnReply.OFF  # a value stored before the setting was checked: off


async def _lock_company(
    connection: DbConnection, sent: Any, update: Incoming, opted_out: bool
) -> list[tuple[Any, ExecutionStatus]]:
    """A reply of a contact in a company, where the campaign stops or pauses the company on a
    reply (issue 19, item 5): the colleagues' executions in the campaign, the one replied to and
    (with an opt-out) the replier's others, locked in id order before anything is written.
    Returns the colleagues' executions to change, with their new status."""
    mode = _company_mode(sent)
    if update.kind != "reply" or mode is CompanyOnReply.OFF or sent["company_id"] is None:
        return []
    if sent["campaign_id"] is None:
        return []
    rows = await connection.fetch(
        QUERIES["lock_company"],
        sent["campaign_id"],
        sent["company_id"],
        sent["contact_id"],
        sent["execution_id"],
        opted_out,
    )
    changes = []
    for row in rows:
        if row["contact_id"] == sent["contact_id"] or row["campaign_id"] != sent["campaign_id"]:
            continue  # the replier's own: the reply or the opt-out decides those
        becomes = on_company_reply(
            mode, ExecutionStatus(row["status"]), taken_over=row["taken_over"]
        )
        if becomes is not None:
            changes.append((row, becomes))
    return changes


async def _company_replied(
    connection: DbConnection,
    outbox: Outbox,
    sent: Any,
    colleagues: list[tuple[Any, ExecutionStatus]],
    now: datetime,
) -> None:
    """Stop or pause the colleagues' executions with the reason company_replied, logged, with
    an event for each (the statistics recount what the events name)."""
    await connection.fetch(
        QUERIES["company_replied"],
        [row["id"] for row, _ in colleagues],
        [status.value for _, status in colleagues],
        sent["execution_id"],
        sent["company_id"],
        now,
    )
    for row, status in colleagues:
        event = ExecutionProgressed(
            execution_id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            previous_status=row["status"],
            status=status.value,
            node_id=row["current_node_id"],
            detail=COMPANY_REPLIED,
        )
        outbox.emit(event, key=row["campaign_id"], at=now)
    log.info(
        "company_replied: %d execution(s) %s in campaign %s (company %s, replied execution %s)",
        len(colleagues),
        "/".join(sorted({status.value for _, status in colleagues})),
        sent["campaign_id"],
        sent["company_id"],
        sent["execution_id"],
    )


async def _in_conversation(
    connection: DbConnection,
    outbox: Outbox,
    sent: Any,
    update: Incoming,
    reply_id: Any,
    now: datetime,
) -> None:
    """The inbox: the reply is its conversation's latest message, with the event."""
    talked = await connection.fetchrow(
        QUERIES["record_in_conversation"],
        reply_id,
        update.account_id,
        sent["contact_id"],
        sent["campaign_id"],
        sent["execution_id"],
        update.text,
        update.at,
    )
    assert talked is not None  # an upsert ... RETURNING
    received = ConversationMessageReceived(
        conversation_id=talked["id"],
        message_id=reply_id,
        telegram_account_id=update.account_id,
        contact_id=sent["contact_id"],
        campaign_id=sent["campaign_id"],
        execution_id=sent["execution_id"],
        body=update.text,
        received_at=update.at,
        unread_count=talked["unread_count"],
    )
    outbox.emit(received, key=talked["id"], at=now)


async def _steer(
    connection: DbConnection, outbox: Outbox, row: ExecutionRow, update: Incoming, now: datetime
) -> None:
    loaded = load(row)
    if loaded.flow is None:
        return
    handling = (row.settings or {}).get("response_handling", {})
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


async def _opt_out(connection: DbConnection, outbox: Outbox, sent: Any, now: datetime) -> None:
    """List the person under each of their identifiers (reason request), complete the execution
    replied to with opted_out and cancel their other unfinished executions (do_not_contact),
    with an event for each change (the statistics recount what the events name)."""
    keys = contact_keys(
        contact_id=sent["contact_id"],
        telegram_user_id=sent["telegram_user_id"],
        username=sent["telegram_username"],
        phone=sent["phone"],
    )
    listed = await connection.fetch(
        QUERIES["list_opt_out"],
        sent["organization_id"],
        sent["owner_user_id"],
        sent["contact_id"],
        now,
        [kind.value for kind, _ in keys],
        [value for _, value in keys],
    )
    for entry in listed:
        added = DoNotContactAdded(
            entry_id=entry["id"],
            organization_id=entry["organization_id"],
            user_id=entry["user_id"],
            kind=Kind(entry["kind"]),
            value=entry["value"],
            reason=Reason(entry["reason"]),
            source=Source(entry["source"]),
            contact_id=entry["contact_id"],
            added_by=entry["added_by"],
        )
        outbox.emit(added, key=entry["list_id"], at=now)
    await connection.fetch(QUERIES["lock_person"], sent["contact_id"], sent["execution_id"])
    for row in await connection.fetch(
        QUERIES["opt_out"], sent["contact_id"], sent["execution_id"], now
    ):
        event = ExecutionProgressed(
            execution_id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            previous_status=row["previous_status"],
            status=row["status"],
            node_id=row["current_node_id"],
            detail=row["reason"],
        )
        outbox.emit(event, key=row["campaign_id"], at=now)
