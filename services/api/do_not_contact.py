"""/do-not-contact: people not to be messaged, per organization (per user in personal mode), and
the consumer of dripline.contact.commands through which other systems edit the same list.

Owners and admins edit an organization's list; members may read it (shared.domain.permissions
`decide_contacts`). Enrolment skips a listed contact and the sender refuses its sends
(docs/do-not-contact.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.api import cursors
from services.api.auth import CurrentPrincipal
from services.api.contacts import csv_records
from services.api.deps import CurrentClock, Database
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.do_not_contact import InvalidIdentifier, Kind, Reason, Source, normalise
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
    ContactCommand,
    ContactCommandRejected,
    Decoded,
    DoNotContactAdd,
    DoNotContactAdded,
    DoNotContactRemove,
    DoNotContactRemoved,
)
from shared.messaging.envelope import Cause
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/do-not-contact", tags=["do-not-contact"])

MAX_IMPORT_ROWS = 50_000
Note = Annotated[str, Field(max_length=1000)]


class EntryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    value: str = Field(
        min_length=1,
        max_length=64,
        description="A contact id, a Telegram user id, a username (with or without @, any case) "
        "or a phone number with its country code; stored normalised.",
    )
    reason: Reason = Reason.MANUAL
    note: Note | None = None


class Entry(BaseModel):
    id: UUID
    organization_id: UUID | None
    user_id: UUID | None = Field(description="The list's owner in personal mode.")
    kind: Kind
    value: str
    reason: Reason
    source: Source
    note: str | None
    contact_id: UUID | None
    added_by: UUID | None
    created_at: datetime


class EntryPage(BaseModel):
    items: list[Entry]
    next_cursor: str | None


class ImportRowError(BaseModel):
    row: int = Field(description="The CSV line, counting the header as line 1.")
    errors: list[dict[str, Any]]


class ImportResult(BaseModel):
    added: int
    already_listed: int
    failed: int
    errors: list[ImportRowError]


def list_id(caller: Caller) -> UUID:
    """The list a caller works on: its organization's, or its own in personal mode."""
    return caller.organization_id or caller.user_id


def _require_editor(caller: Caller) -> None:
    decision = decide_contacts(caller, ContactAction.EDIT_DO_NOT_CONTACT, only_own=True)
    if decision is not Decision.ALLOWED:
        raise Problem(
            403,
            CONTACT_REFUSALS[ContactAction.EDIT_DO_NOT_CONTACT],
            "Permission denied",
            "only owners and admins edit the organization's do-not-contact list",
        )


def _stored(kind: Kind, value: str, field: str) -> str:
    try:
        return normalise(kind, value)
    except InvalidIdentifier as exc:
        raise invalid([field_error(field, str(exc))]) from exc


async def add_entries(
    connection: DbConnection,
    outbox: Outbox,
    caller: Caller,
    source: Source,
    entries: Sequence[tuple[Kind, str, Reason, str | None, UUID | None]],
    now: datetime,
    cause: Cause,
    added_by: UUID | None,
) -> list[Any]:
    """Add (kind, normalised value, reason, note, contact) entries to the caller's list, and
    emit do_not_contact.added for each one that was not there. Returns the rows added. The
    contact reference is for entries taken from a known contact (an opt-out); an entry by
    contact id names it in its value, which may be an id no row has (yet, or any more)."""
    rows = await connection.fetch(
        QUERIES["add_many"],
        caller.organization_id,
        caller.user_id,
        source.value,
        added_by,
        now,
        [e[0].value for e in entries],
        [e[1] for e in entries],
        [e[2].value for e in entries],
        [e[3] for e in entries],
        [e[4] for e in entries],
    )
    for row in rows:
        outbox.emit(_added(row), key=row["list_id"], cause=cause, at=now)
    return list(rows)


def _added(row: Any) -> DoNotContactAdded:
    return DoNotContactAdded(
        entry_id=row["id"],
        organization_id=row["organization_id"],
        user_id=row["user_id"],
        kind=Kind(row["kind"]),
        value=row["value"],
        reason=Reason(row["reason"]),
        source=Source(row["source"]),
        contact_id=row["contact_id"],
        added_by=row["added_by"],
    )


def _removed(row: Any) -> DoNotContactRemoved:
    return DoNotContactRemoved(
        entry_id=row["id"],
        organization_id=row["organization_id"],
        user_id=row["user_id"],
        kind=Kind(row["kind"]),
        value=row["value"],
    )


@router.get("", response_model=EntryPage, summary="List the do-not-contact list")
async def list_entries(
    who: CurrentPrincipal,
    database: Database,
    kind: Kind | None = None,
    value: Annotated[
        str | None, Query(max_length=64, description="A prefix of the stored value.")
    ] = None,
    reason: Reason | None = None,
    source: Source | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> EntryPage:
    """Newest first. Every member of an organization may read its list."""
    after = cursors.created_position(cursor)
    prefix = None
    if value:
        prefix = value.strip().removeprefix("@").lower()
        prefix = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        rows = await connection.fetch(
            QUERIES["list"],
            list_id(who.caller),
            after[0],
            after[1],
            kind.value if kind else None,
            prefix,
            reason.value if reason else None,
            source.value if source else None,
            keyset.fetch,
        )
    items, next_cursor = keyset.page(
        rows,
        lambda row: Entry.model_validate(dict(row)),
        lambda item: cursors.created_cursor(item.created_at, item.id),
    )
    return EntryPage(items=items, next_cursor=next_cursor)


@router.post(
    "",
    status_code=201,
    response_model=Entry,
    summary="Add to the do-not-contact list",
    responses={200: {"model": Entry, "description": "Already on the list: the entry as it was."}},
)
async def add_entry(
    body: EntryCreate,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    response: Response,
) -> Entry:
    """201 with the new entry; 200 with the entry already there (its reason stands)."""
    _require_editor(who.caller)
    value = _stored(body.kind, body.value, "value")
    async with transaction(database, clock) as tx:
        added = await add_entries(
            tx.connection,
            tx.outbox,
            who.caller,
            Source.API,
            [(body.kind, value, body.reason, body.note, None)],
            clock.now(),
            Cause(who.actor),
            who.caller.user_id,
        )
        row = added[0] if added else None
        if row is None:
            response.status_code = 200
            row = await tx.connection.fetchrow(
                QUERIES["find"], list_id(who.caller), body.kind.value, value
            )
    assert row is not None
    return Entry.model_validate(dict(row))


@router.get("/{entry_id}", response_model=Entry, summary="Read a do-not-contact entry")
async def get_entry(entry_id: UUID, who: CurrentPrincipal, database: Database) -> Entry:
    async with database.acquire() as connection:
        row = await connection.fetchrow(QUERIES["get"], entry_id, list_id(who.caller))
    if row is None:
        raise not_found("do_not_contact_entry")
    return Entry.model_validate(dict(row))


@router.delete("/{entry_id}", status_code=204, summary="Remove from the do-not-contact list")
async def remove_entry(
    entry_id: UUID, who: CurrentPrincipal, database: Database, clock: CurrentClock
) -> None:
    """The person may be messaged again by campaigns that enrol them from now on; executions
    the list already ended stay ended."""
    _require_editor(who.caller)
    async with transaction(database, clock) as tx:
        row = await tx.connection.fetchrow(QUERIES["remove"], entry_id, list_id(who.caller))
        if row is None:
            raise not_found("do_not_contact_entry")
        tx.outbox.emit(_removed(row), key=row["list_id"], cause=Cause(who.actor))


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Import do-not-contact entries from CSV",
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_entries(
    who: CurrentPrincipal, request: Request, database: Database, clock: CurrentClock
) -> ImportResult:
    """A CSV body (Content-Type: text/csv) with a header. Columns: kind (contact,
    telegram_user_id, username or phone) and value, or one column per kind (telegram_username,
    phone, telegram_user_id: a contacts export reads as it is, every identifier of a row
    listed); optional reason (default imported) and note. Good rows are added; each bad row is
    reported; a file the CSV reader cannot follow is refused whole (422), as for contacts."""
    _require_editor(who.caller)
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid([field_error("body", f"the CSV must be UTF-8: {exc}")]) from exc
    records = csv_records(text, identifiers=("kind", *_COLUMN_KINDS))
    if len(records) > MAX_IMPORT_ROWS:
        raise invalid([field_error("body", f"at most {MAX_IMPORT_ROWS} rows per import")])
    entries: dict[tuple[Kind, str], tuple[Kind, str, Reason, str | None, UUID | None]] = {}
    bad: list[ImportRowError] = []
    for line, record in records:
        parsed, errors = _parse_row(record)
        if errors:
            bad.append(ImportRowError(row=line, errors=errors))
        for entry in parsed if not errors else []:
            entries.setdefault((entry[0], entry[1]), entry)
    added: list[Any] = []
    if entries:
        async with transaction(database, clock) as tx:
            added = await add_entries(
                tx.connection,
                tx.outbox,
                who.caller,
                Source.IMPORT,
                list(entries.values()),
                clock.now(),
                Cause(who.actor),
                who.caller.user_id,
            )
    return ImportResult(
        added=len(added),
        already_listed=len(entries) - len(added),
        failed=len(bad),
        errors=bad,
    )


_COLUMN_KINDS = {
    "telegram_username": Kind.USERNAME,
    "username": Kind.USERNAME,
    "phone": Kind.PHONE,
    "telegram_user_id": Kind.TELEGRAM_USER_ID,
}


def _parse_row(
    record: dict[str | None, str],
) -> tuple[list[tuple[Kind, str, Reason, str | None, UUID | None]], list[dict[str, Any]]]:
    cells = {name: (cell or "").strip() for name, cell in record.items() if name is not None}
    errors: list[dict[str, Any]] = []
    if "\x00" in "".join(cells.values()):
        return [], [field_error("row", "a cell holds a NUL character")]
    try:
        reason = Reason(cells.get("reason") or Reason.IMPORTED.value)
    except ValueError:
        errors.append(field_error("reason", "reason is one of " + ", ".join(Reason)))
        reason = Reason.IMPORTED
    note = cells.get("note") or None
    if note is not None and len(note) > 1000:
        errors.append(field_error("note", "a note has at most 1000 characters"))
    pairs: list[tuple[str, Kind, str]] = []
    if cells.get("kind") or cells.get("value"):
        try:
            pairs.append(("value", Kind(cells.get("kind", "")), cells.get("value", "")))
        except ValueError:
            errors.append(field_error("kind", "kind is one of " + ", ".join(Kind)))
    pairs += [(column, kind, cells[column]) for column, kind in _COLUMN_KINDS.items()
              if cells.get(column)]  # fmt: skip
    if not pairs and not errors:
        errors.append(
            field_error("value", "give kind and value, or telegram_username, phone or user id")
        )
    entries: list[tuple[Kind, str, Reason, str | None, UUID | None]] = []
    for column, kind, value in pairs:
        try:
            stored = normalise(kind, value)
        except InvalidIdentifier as exc:
            errors.append(field_error(column, str(exc)))
            continue
        entries.append((kind, stored, reason, note, None))
    return entries, errors


async def on_command(context: HandlerContext, message: Decoded[ContactCommand]) -> None:
    """Another system adds to or removes from a list. The actor is checked as an API caller
    would be: a member's command is refused with contact.command_rejected (a business refusal,
    not a dead letter); an identifier that cannot name anyone never gets here (the contract
    normalises it, and the consumer dead-letters what does not fit)."""
    envelope, payload = message.envelope, message.payload
    actor = envelope.actor
    assert actor is not None  # the contracts require one
    connection, now, cause = context.connection, context.clock.now(), Cause.of(envelope)
    role: Role | None = None
    if actor.organization_id is not None:
        found = await connection.fetchval(
            QUERIES["member_role"], actor.organization_id, actor.user_id
        )
        role = Role(found) if found is not None else None
    caller = Caller(actor.user_id, actor.organization_id, role)
    decision = decide_contacts(caller, ContactAction.EDIT_DO_NOT_CONTACT, only_own=True)
    if decision is not Decision.ALLOWED:
        refused = ContactCommandRejected(
            command_type=envelope.type,
            code=CONTACT_REFUSALS[ContactAction.EDIT_DO_NOT_CONTACT]
            if decision is Decision.FORBIDDEN
            else "organization_not_found",
            message="only owners and admins edit the organization's do-not-contact list"
            if decision is Decision.FORBIDDEN
            else "the actor is not a member of that organization",
        )
        context.outbox.emit(refused, key=list_id(caller), cause=cause, at=now)
        return
    if isinstance(payload, DoNotContactAdd):
        entry = (payload.kind, payload.value, payload.reason, payload.note, None)
        await add_entries(
            connection, context.outbox, caller, Source.KAFKA, [entry], now, cause, actor.user_id
        )
        return
    assert isinstance(payload, DoNotContactRemove)
    row = await connection.fetchrow(
        QUERIES["remove_key"], list_id(caller), payload.kind.value, payload.value
    )
    if row is not None:
        context.outbox.emit(_removed(row), key=row["list_id"], cause=cause, at=now)
