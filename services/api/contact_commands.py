"""Other systems' contact commands on dripline.contact.commands (issue 16): upsert, add and
remove tags, delete and restore, applied by the API (which owns contacts) in the consumer's
transaction, with its inbox dedupe; answered with contact.changed or contact.command_rejected
(the command's correlation id). The actor is checked as an API caller would be: a member of
the organization named by the command (or the user itself in personal mode); deleting and
restoring follow `decide_contacts`, so a member touches only the contacts it created. What does
not fit a contract never gets here: the consumer dead-letters it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from services.api.contacts import remove_contact
from services.api.do_not_contact import list_id
from shared.db.sql import Queries
from shared.domain.permissions import (
    CONTACT_REFUSALS,
    Caller,
    ContactAction,
    Decision,
    Role,
    decide_contacts,
)
from shared.messaging.consumer import HandlerContext
from shared.messaging.contracts import (
    ContactChanged,
    ContactCommandRejected,
    ContactRef,
    ContactTags,
    ContactUpsert,
    Decoded,
    MessageType,
)
from shared.messaging.contracts.contact_commands import ContactRecordCommand
from shared.messaging.contracts.contact_events import ContactChange
from shared.messaging.envelope import Cause

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


async def on_command(context: HandlerContext, message: Decoded[ContactRecordCommand]) -> None:
    envelope, payload = message.envelope, message.payload
    actor = envelope.actor
    assert actor is not None  # the contracts require one
    connection, now, cause = context.connection, context.clock.now(), Cause.of(envelope)
    caller = Caller(actor.user_id, actor.organization_id, None)
    try:
        caller = await _caller(connection, caller)
        row, change = await _apply(context, caller, MessageType(envelope.type), payload, cause)
    except Refused as refused:
        rejected = ContactCommandRejected(
            command_type=envelope.type, code=refused.code, message=refused.message
        )
        context.outbox.emit(rejected, key=list_id(caller), cause=cause, at=now)
        return
    changed = ContactChanged(
        contact_id=row["id"],
        external_id=row["external_id"],
        change=change,
        telegram_username=row["telegram_username"],
        phone=row["phone"],
        tags=list(row["tags"]),
        deleted=row["deleted_at"] is not None,
        time_zone=row["time_zone"],
    )
    context.outbox.emit(changed, key=list_id(caller), cause=cause, at=now)


async def _caller(connection: Any, caller: Caller) -> Caller:
    if caller.organization_id is None:
        return caller
    found = await connection.fetchval(
        QUERIES["member_role"], caller.organization_id, caller.user_id
    )
    if found is None:
        raise Refused("organization_not_found", "the actor is not a member of that organization")
    return Caller(caller.user_id, caller.organization_id, Role(found))


async def _apply(
    context: HandlerContext,
    caller: Caller,
    kind: MessageType,
    payload: ContactRecordCommand,
    cause: Cause,
) -> tuple[asyncpg.Record, ContactChange]:
    connection, now = context.connection, context.clock.now()
    if isinstance(payload, ContactUpsert):
        return await _upsert(connection, caller, payload, now)
    assert isinstance(payload, ContactRef)
    row = await _find(connection, caller, payload)
    if isinstance(payload, ContactTags):
        if row["deleted_at"] is not None:
            raise Refused("contact_deleted", "the contact is deleted; restore it first")
        adding = kind is MessageType.CONTACT_ADD_TAGS
        query = "add_tags" if adding else "remove_tags"
        updated = await _one(connection, QUERIES[query], row["id"], payload.tags, now)
        return updated, "tags_added" if adding else "tags_removed"
    only_own = row["owner_user_id"] == caller.user_id
    if decide_contacts(caller, ContactAction.DELETE_CONTACTS, only_own=only_own) is not (
        Decision.ALLOWED
    ):
        raise Refused(
            CONTACT_REFUSALS[ContactAction.DELETE_CONTACTS],
            "a member may delete or restore only the contacts they created",
        )
    if kind is MessageType.CONTACT_DELETE:
        if row["deleted_at"] is None:  # deleting a deleted contact changes nothing
            await remove_contact(connection, context.outbox, row["id"], now, cause)
        return await _one(connection, QUERIES["get"], row["id"]), "deleted"
    restored = await _one(connection, QUERIES["restore"], row["id"], now)
    return restored, "restored"


async def _one(connection: Any, query: str, *arguments: Any) -> asyncpg.Record:
    row = await connection.fetchrow(query, *arguments)
    assert row is not None  # the contact is locked in this transaction
    return row  # type: ignore[no-any-return]


async def _find(connection: Any, caller: Caller, ref: ContactRef) -> asyncpg.Record:
    context = (caller.organization_id, caller.user_id)
    if ref.contact_id is not None:
        row = await connection.fetchrow(QUERIES["find_by_id"], *context, ref.contact_id)
    else:
        row = await connection.fetchrow(QUERIES["find_by_external_id"], *context, ref.external_id)
    if row is None:
        raise Refused("contact_not_found", "no such contact in the actor's context")
    return row  # type: ignore[no-any-return]


async def _upsert(
    connection: Any, caller: Caller, payload: ContactUpsert, now: Any
) -> tuple[asyncpg.Record, ContactChange]:
    context = (caller.organization_id, caller.user_id)
    row = None
    if payload.external_id is not None:
        row = await connection.fetchrow(
            QUERIES["find_by_external_id"], *context, payload.external_id
        )
        if row is not None and row["deleted_at"] is not None:
            raise Refused("contact_deleted", "the contact is deleted; restore it first")
    if row is None and payload.telegram_username is not None:
        row = await connection.fetchrow(
            QUERIES["find_by_username"], *context, payload.telegram_username
        )
    if row is None and payload.phone is not None:
        row = await connection.fetchrow(QUERIES["find_by_phone"], *context, payload.phone)
    fields = (
        payload.telegram_username,
        payload.phone,
        payload.telegram_user_id,
        payload.first_name,
        payload.last_name,
        payload.custom_fields,
        payload.time_zone,
    )
    if row is not None:
        if (
            payload.external_id is not None
            and row["external_id"] is not None
            and row["external_id"] != payload.external_id
        ):
            raise Refused(
                "external_id_conflict",
                "the contact found by username or phone has another external id",
            )
        updated = await connection.fetchrow(
            QUERIES["update"], row["id"], payload.external_id, *fields, payload.tags, now
        )
        return updated, "updated"
    if (
        payload.telegram_username is None
        and payload.phone is None
        and (payload.telegram_user_id is None)
    ):
        raise Refused(
            "contact_identifier_missing",
            "a new contact needs a telegram_username, phone or telegram_user_id",
        )
    created = await connection.fetchrow(
        QUERIES["insert"], *context, payload.external_id, *fields, payload.tags
    )
    return created, "created"
