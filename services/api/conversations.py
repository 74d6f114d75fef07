"""/conversations: the unified inbox (issue 15, item 6; docs/inbox.md). One conversation per
(account, contact), kept by the sender in the transactions that record a send or a reply.

Who sees a conversation follows its campaign (shared.domain.permissions `decide`): whoever may
view the campaign reads its conversations, and whoever may edit it answers them. A person's
answer is recorded queued and handed to the sender (`conversation.send` on
dripline.account.commands), which sends it with the account's pacing and health rules; the
conversation is taken over in the same transaction, which holds its execution until released.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.api import cursors
from services.api.auth import CurrentPrincipal, Principal
from services.api.deps import CurrentClock, Database
from services.api.paging import Keyset
from services.api.problems import Problem, forbidden, not_found
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import permissions
from shared.domain.permissions import Action, Decision, Ownership
from shared.messaging.contracts import ConversationRead, ConversationSend, ConversationTakenOver
from shared.messaging.envelope import Cause
from shared.messaging.transaction import transaction

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/conversations", tags=["inbox"])

# Telegram's limit for one text message.
AnswerText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4096)]


class Conversation(BaseModel):
    id: UUID
    telegram_account_id: UUID
    account_name: str
    contact_id: UUID
    first_name: str | None
    last_name: str | None
    telegram_username: str | None
    contact_tags: list[str]
    campaign_id: UUID | None
    campaign_name: str | None
    execution_id: UUID | None
    last_message_id: UUID | None
    last_direction: Literal["outgoing", "incoming"]
    last_body: str
    last_message_at: datetime
    last_reply_at: datetime | None
    unread_count: int
    taken_over: bool
    taken_over_at: datetime | None
    taken_over_by: UUID | None


class ConversationPage(BaseModel):
    items: list[Conversation]
    next_cursor: str | None


class Message(BaseModel):
    id: UUID
    direction: Literal["outgoing", "incoming"]
    body: str
    status: str = Field(
        description="queued (an answer the sender has not sent yet), sent, delivered, read, "
        "failed, unknown; received for theirs."
    )
    campaign_id: UUID
    execution_id: UUID | None = Field(description="None for an answer a person wrote.")
    node_id: str | None
    telegram_message_id: int | None
    error_message: str | None
    at: datetime = Field(description="When it was sent or received (written, while queued).")
    sent_at: datetime | None
    delivered_at: datetime | None
    read_at: datetime | None
    created_at: datetime


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None


class AnswerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: AnswerText


def _conversation(row: Any) -> Conversation:
    return Conversation.model_validate(
        {**dict(row), "taken_over": row["taken_over_at"] is not None}
    )


async def authorized(
    connection: DbConnection, who: Principal, conversation_id: UUID, action: Action
) -> Any:
    """The conversation if the caller may do `action` to its campaign: 404 if it may not even
    see it, 403 if it may see it but not do this."""
    row = await connection.fetchrow(QUERIES["get"], conversation_id)
    if row is None:
        raise not_found("conversation")
    owned = Ownership(row["campaign_created_by"], row["campaign_organization_id"])
    decision = permissions.decide(who.caller, owned, action)
    if decision is Decision.INVISIBLE:
        raise not_found("conversation")
    if decision is Decision.FORBIDDEN:
        raise forbidden("the caller may not answer this conversation")
    return row


async def _lock(connection: DbConnection, who: Principal, conversation_id: UUID) -> Any:
    """The conversation, if the caller may answer it, locked after its execution: the sender
    locks an execution before its conversation (a send's answer, a reply), so the API does
    too."""
    row = await authorized(connection, who, conversation_id, Action.EDIT)
    if row["execution_id"] is not None:
        await connection.execute(QUERIES["lock_execution"], row["execution_id"])
    found = await connection.fetchrow(QUERIES["lock"], conversation_id)
    if found is None:
        raise not_found("conversation")
    if found["execution_id"] not in (None, row["execution_id"]):
        # A reply from another campaign moved it meanwhile: that execution is held too.
        await connection.execute(QUERIES["lock_execution"], found["execution_id"])
    return found


@router.get("", response_model=ConversationPage, summary="List the inbox's conversations")
async def list_conversations(
    who: CurrentPrincipal,
    database: Database,
    unread: Annotated[bool, Query(description="Only conversations with unread replies.")] = False,
    account_id: UUID | None = None,
    campaign_id: UUID | None = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    replied_since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ConversationPage:
    """Newest activity first (the last message, ours or theirs), in keyset pages."""
    after: tuple[datetime | None, UUID | None] = (None, None)
    if cursor:
        position = cursors.decode(cursor, cursors.CreatedPosition)
        after = (position.c, position.i)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        rows = await connection.fetch(
            QUERIES["list"],
            who.caller.organization_id,
            who.caller.user_id,
            who.caller.sees_others,
            after[0],
            after[1],
            unread,
            account_id,
            campaign_id,
            tag,
            replied_since,
            keyset.fetch,
        )
    items, next_cursor = keyset.page(
        rows,
        _conversation,
        lambda item: cursors.encode(c=item.last_message_at.isoformat(), i=item.id),
    )
    return ConversationPage(items=items, next_cursor=next_cursor)


@router.get("/{conversation_id}", response_model=Conversation, summary="Get a conversation")
async def get_conversation(
    conversation_id: UUID, who: CurrentPrincipal, database: Database
) -> Conversation:
    async with database.acquire() as connection:
        return _conversation(await authorized(connection, who, conversation_id, Action.VIEW))


@router.get(
    "/{conversation_id}/messages",
    response_model=MessagePage,
    summary="A conversation's messages, ours and theirs, oldest first",
)
async def list_messages(
    conversation_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: str | None = None,
) -> MessagePage:
    after: tuple[datetime | None, datetime | None, UUID | None] = (None, None, None)
    if cursor:
        position = cursors.decode(cursor, cursors.TimedPosition)
        after = (position.t, position.c, position.i)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        row = await authorized(connection, who, conversation_id, Action.VIEW)
        rows = await connection.fetch(
            QUERIES["messages"],
            row["telegram_account_id"],
            row["contact_id"],
            *after,
            keyset.fetch,
        )
    items, next_cursor = keyset.page(
        rows,
        lambda r: Message.model_validate(dict(r)),
        lambda item: cursors.encode(
            t=item.at.isoformat(), c=item.created_at.isoformat(), i=item.id
        ),
    )
    return MessagePage(items=items, next_cursor=next_cursor)


@router.post(
    "/{conversation_id}/messages",
    status_code=202,
    response_model=Message,
    summary="Answer as the account (takes the conversation over)",
)
async def answer(
    conversation_id: UUID,
    body: AnswerCreate,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
) -> Message:
    """202 with the answer, queued: the sender sends it with the account's pacing and health
    rules, and its status becomes sent (or failed, with the reason). The conversation is taken
    over: its execution takes no more automatic steps until `POST .../release`. 409
    `account_deleted`, `contact_deleted` or `do_not_contact` when the person may not be written
    to from this account."""
    text = body.text
    async with transaction(database, clock) as tx:
        connection, now = tx.connection, clock.now()
        found = await _lock(connection, who, conversation_id)
        if found["account_deleted_at"] is not None:
            raise Problem(409, "account_deleted", "Account deleted",
                          "the conversation's account was deleted")  # fmt: skip
        if found["contact_deleted_at"] is not None:
            raise Problem(409, "contact_deleted", "Contact deleted",
                          "the contact was deleted: nothing more is sent to them")  # fmt: skip
        if found["do_not_contact"]:
            raise Problem(409, "do_not_contact", "Do not contact",
                          "the person is on the do-not-contact list")  # fmt: skip
        was_taken_over = found["taken_over_at"] is not None
        recorded = await connection.fetchrow(
            QUERIES["record_answer"],
            found["campaign_id"],
            found["contact_id"],
            found["telegram_account_id"],
            text,
            secrets.randbits(63) or 1,
            f"answer:{uuid4()}",
            now,
        )
        assert recorded is not None  # an INSERT ... RETURNING
        taken_at = await connection.fetchval(
            QUERIES["take_over"], conversation_id, who.caller.user_id, now, found["execution_id"]
        )
        cause = Cause(who.actor)
        if not was_taken_over:
            taken = ConversationTakenOver(
                conversation_id=conversation_id,
                telegram_account_id=found["telegram_account_id"],
                contact_id=found["contact_id"],
                campaign_id=found["campaign_id"],
                execution_id=found["execution_id"],
                taken_over_by=who.caller.user_id,
                taken_over_at=taken_at,
            )
            tx.outbox.emit(taken, key=conversation_id, cause=cause, at=now)
        command = ConversationSend(
            telegram_account_id=found["telegram_account_id"],
            conversation_id=conversation_id,
            message_id=recorded["id"],
        )
        tx.outbox.emit(command, key=found["telegram_account_id"], cause=cause, at=now)
    return Message.model_validate(dict(recorded))


@router.post(
    "/{conversation_id}/read",
    response_model=Conversation,
    summary="Mark as read (and send the read receipt through the account)",
)
async def mark_read(
    conversation_id: UUID, who: CurrentPrincipal, database: Database, clock: CurrentClock
) -> Conversation:
    """The unread count goes to 0 now; the sender sends Telegram's read receipt for the
    conversation through its account (`conversation.read`), best effort."""
    async with transaction(database, clock) as tx:
        connection, now = tx.connection, clock.now()
        row = await authorized(connection, who, conversation_id, Action.EDIT)
        await connection.execute(QUERIES["mark_read"], conversation_id, now)
        if row["unread_count"] > 0 or row["last_direction"] == "incoming":
            command = ConversationRead(
                telegram_account_id=row["telegram_account_id"], conversation_id=conversation_id
            )
            tx.outbox.emit(command, key=row["telegram_account_id"], cause=Cause(who.actor), at=now)
        row = await connection.fetchrow(QUERIES["get"], conversation_id)
    return _conversation(row)


@router.post(
    "/{conversation_id}/release",
    response_model=Conversation,
    summary="Hand the conversation back to its campaign's flow",
)
async def release(
    conversation_id: UUID, who: CurrentPrincipal, database: Database, clock: CurrentClock
) -> Conversation:
    """The execution takes automatic steps again from where it stood (a wait that ran out
    meanwhile is due at once). Releasing a conversation not taken over changes nothing."""
    async with transaction(database, clock) as tx:
        connection, now = tx.connection, clock.now()
        found = await _lock(connection, who, conversation_id)
        await connection.execute(QUERIES["release"], conversation_id, now, found["execution_id"])
        row = await connection.fetchrow(QUERIES["get"], conversation_id)
    return _conversation(row)
