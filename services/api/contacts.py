"""/contacts: the people campaigns write to, and their CSV import."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from services.api import cursors
from services.api.auth import (
    ConnectedPrincipal,
    CurrentPrincipal,
    Principal,
    RequestConnection,
    pool,
)
from services.api.deps import CurrentClock, Database
from services.api.paging import Keyset
from services.api.problems import Problem, field_error, invalid, not_found
from shared.csv_export import restored
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain import identifiers
from shared.domain.permissions import (
    CONTACT_REFUSALS,
    Caller,
    ContactAction,
    Decision,
    decide_contacts,
)
from shared.domain.reach import SkipReason
from shared.domain.recipient_zones import effective_zone, valid_zone
from shared.messaging.contracts import ExecutionProgressed
from shared.messaging.envelope import Cause
from shared.messaging.outbox import Outbox
from shared.messaging.transaction import transaction

CONTACTS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/contacts", tags=["contacts"])

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
FieldValue = str | int | float | bool | None
MAX_FIELD_TEXT = 5000
IDENTIFIERS = ("telegram_username", "phone", "telegram_user_id")
MAX_IMPORT_ROWS = 50_000
# What PATCH may change and a create sets, in the order the update and insert queries bind it.
EDITABLE = (
    *IDENTIFIERS,
    "first_name",
    "last_name",
    "custom_fields",
    "tags",
    "company_id",
    "time_zone",
)
# The CSV import's own columns; any other becomes a custom field.
IMPORT_COLUMNS = frozenset({*IDENTIFIERS, "first_name", "last_name", "tags", "time_zone"})


_username = identifiers.username
_phone = identifiers.phone


def _custom_fields(value: dict[str, FieldValue]) -> dict[str, FieldValue]:
    if len(value) > 50:
        raise ValueError("at most 50 custom fields")
    for key, item in value.items():
        if not 1 <= len(key) <= 64:
            raise ValueError(f"custom field name {key!r} must be 1-64 characters")
        if isinstance(item, str) and len(item) > MAX_FIELD_TEXT:
            raise ValueError(f"custom field {key!r} is longer than {MAX_FIELD_TEXT} characters")
    return value


def checked_zone(value: str | None) -> str | None:
    """A contact's time zone: an IANA name the zone database knows (`unknown_time_zone`)."""
    if value is None:
        return None
    if valid_zone(value) is None:
        raise PydanticCustomError(
            "unknown_time_zone",
            "unknown time zone {zone!r}: give an IANA name such as Europe/Berlin",
            {"zone": value},
        )
    return value


# For the other records with custom fields (companies, opportunities): the same limits.
check_custom_fields = _custom_fields


class ContactFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    telegram_username: str | None = None
    phone: str | None = None
    telegram_user_id: int | None = Field(default=None, gt=0, lt=2**63)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    custom_fields: dict[str, FieldValue] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list, max_length=100)
    company_id: UUID | None = Field(
        default=None, description="The company the contact belongs to (at most one)."
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="The contact's own time zone, an IANA name (Europe/Berlin). Without one, "
        "the zone its phone number's country implies is used where the country has one zone.",
    )

    _username = field_validator("telegram_username")(_username)
    _phone = field_validator("phone")(_phone)
    _custom = field_validator("custom_fields")(_custom_fields)
    _time_zone = field_validator("time_zone")(checked_zone)


class ContactPatch(ContactFields):
    """Only the fields present change; null clears the optional ones. custom_fields and tags
    are not optional: to clear them, send {} or [] (null is 422 naming the field)."""


class Contact(BaseModel):
    id: UUID
    organization_id: UUID | None
    owner_user_id: UUID
    telegram_username: str | None
    phone: str | None
    telegram_user_id: int | None
    first_name: str | None
    last_name: str | None
    custom_fields: dict[str, Any]
    tags: list[str]
    company_id: UUID | None
    time_zone: str | None = Field(description="The time zone given for the contact, if any.")
    effective_time_zone: str | None = Field(
        description="The zone a campaign with active_hours.in_recipient_zone reads its hours "
        "in: time_zone, else the one the phone number's country implies (when it has one)."
    )
    time_zone_inferred: bool = Field(
        description="effective_time_zone comes from the phone number, not from time_zone."
    )
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _effective_zone(cls, data: Any) -> Any:
        if isinstance(data, dict) and "effective_time_zone" not in data:
            zone = effective_zone(data.get("time_zone"), data.get("phone"))
            data = {**data, "effective_time_zone": zone.zone, "time_zone_inferred": zone.inferred}
        return data


CONTACT_LIST = TypeAdapter(list[Contact])


class ContactPage(BaseModel):
    items: list[Contact]
    next_cursor: str | None


class RowError(BaseModel):
    row: int = Field(description="The CSV line, counting the header as line 1.")
    errors: list[dict[str, Any]]


class ImportResult(BaseModel):
    imported: int
    failed: int
    errors: list[RowError]


def _identity_errors(values: dict[str, Any]) -> list[dict[str, Any]]:
    if any(values.get(name) is not None for name in IDENTIFIERS):
        return []
    return [
        field_error(
            "telegram_username",
            "give at least one of telegram_username, phone or telegram_user_id",
            "missing",
        )
    ]


async def _check_company(connection: DbConnection, who: Principal, company_id: UUID | None) -> None:
    """A contact joins only a company of its own context (404 as for the company itself)."""
    if company_id is not None and not await connection.fetchval(
        CONTACTS["company_in_context"], company_id, who.caller.organization_id, who.caller.user_id
    ):
        raise not_found("company")


async def _get(connection: DbConnection, who: Principal, contact_id: UUID) -> Any:
    row = await connection.fetchrow(
        CONTACTS["get"], contact_id, who.caller.organization_id, who.caller.user_id
    )
    if row is None:
        raise not_found("contact")
    return row


@router.post("", status_code=201, response_model=Contact, summary="Create a contact")
async def create_contact(
    body: ContactFields, who: ConnectedPrincipal, connection: RequestConnection
) -> Contact:
    values = body.model_dump()
    if errors := _identity_errors(values):
        raise invalid(errors)
    await _check_company(connection, who, body.company_id)
    row = await connection.fetchrow(
        CONTACTS["insert"],
        who.caller.organization_id,
        who.caller.user_id,
        *(values[name] for name in EDITABLE),
    )
    assert row is not None
    return Contact.model_validate(dict(row))


def list_query(caller: Caller) -> tuple[str, UUID]:
    """The list's query for the caller's context and the id it is scoped by: the organization's
    contacts, or in personal mode the user's own (one query each, so each walks its index)."""
    if caller.organization_id is None:
        return CONTACTS["list_personal"], caller.user_id
    return CONTACTS["list_organization"], caller.organization_id


@router.get("", response_model=ContactPage, summary="List contacts")
async def list_contacts(
    who: ConnectedPrincipal,
    connection: RequestConnection,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    company_id: Annotated[UUID | None, Query(description="Only the company's contacts.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> ContactPage:
    after = cursors.created_position(cursor)
    term = None
    if search:
        term = search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    keyset = Keyset(limit)
    query, scope = list_query(who.caller)
    rows = await connection.fetch(
        query, scope, after[0], after[1], tag, term, company_id, keyset.fetch
    )
    # One validation call for the page (a third cheaper than one per row, bench.api_load).
    items, next_cursor = keyset.page(
        CONTACT_LIST.validate_python([dict(row) for row in rows]),
        lambda contact: contact,
        lambda last: cursors.created_cursor(last.created_at, last.id),
    )
    return ContactPage(items=items, next_cursor=next_cursor)


@router.post(
    "/import",
    response_model=ImportResult,
    summary="Import contacts from CSV",
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
)
async def import_contacts(who: CurrentPrincipal, request: Request) -> ImportResult:
    """A CSV body (Content-Type: text/csv) with a header. Known columns: telegram_username,
    phone, telegram_user_id, first_name, last_name, tags (separated by ';'), time_zone (an IANA
    name; an unknown one fails its row, `unknown_time_zone`); every other column becomes a
    custom field. Good rows are imported; each bad row is reported with its errors.
    A file the CSV reader cannot follow (an unclosed quote, a field over the reader's size
    limit), a header with a column twice, and a body over max_import_bytes (413) are refused
    whole, and nothing is imported."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise invalid([field_error("body", f"the CSV must be UTF-8: {exc}")]) from exc
    good: list[dict[str, Any]] = []
    bad: list[RowError] = []
    for line, record in csv_records(text):
        values, errors = _parse_row(record)
        if errors:
            bad.append(RowError(row=line, errors=errors))
        else:
            good.append(values)
    if good:
        async with pool(request).acquire() as connection:
            await connection.execute(
                CONTACTS["insert_many"], who.caller.organization_id, who.caller.user_id, good
            )
    return ImportResult(imported=len(good), failed=len(bad), errors=bad)


def _whole_file(message: str) -> Problem:
    return invalid([field_error("body", message)])


def csv_records(
    text: str, identifiers: Sequence[str] = IDENTIFIERS
) -> list[tuple[int, dict[str | None, str]]]:
    """The records of the file, each with the line it starts on, as header name -> cell (None
    names the cells past the header's columns). Read in full before anything is imported, so a
    file that breaks half-way imports nothing."""
    # newline="" hands line endings to the reader: CR-only files (old Mac exports) read as
    # lines, and quoted fields keep their own line breaks. strict: a stray or unclosed quote
    # is an error, not a field that silently swallows the rest of the file.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, dict[str | None, str]]] = []
    header: list[str] | None = None
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if header is None:
                header = _header(cells)
                continue
            if not cells:
                continue  # a blank line
            if len(records) >= MAX_IMPORT_ROWS:
                raise _whole_file(f"an import has at most {MAX_IMPORT_ROWS} rows")
            record: dict[str | None, str] = dict(zip(header, cells, strict=False))
            record.pop("", None)  # columns without a name are ignored
            if len(cells) > len(header):
                record[None] = ",".join(cells[len(header) :])
            records.append((line, record))
    except csv.Error as exc:
        hint = " (a quoted field is never closed)" if "end of data" in str(exc) else ""
        raise _whole_file(f"line {start}: {exc}{hint}; nothing was imported") from exc
    if header is None:
        header = []
    if not any(name in identifiers for name in header):
        raise _whole_file("the header needs at least one of " + ", ".join(identifiers))
    return records


def _header(cells: list[str]) -> list[str]:
    names = [cell.strip() for cell in cells]
    if any("\x00" in name for name in names):
        raise _whole_file("the header contains a NUL character")
    twice = sorted(name for name, count in Counter(names).items() if name and count > 1)
    if twice:
        # Which of the two columns would win is a guess; the file must say.
        raise _whole_file("the header names a column more than once: " + ", ".join(twice))
    return names


def _parse_row(record: dict[str | None, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    known = IMPORT_COLUMNS
    fields: dict[str, Any] = {"custom_fields": {}}
    if None in record:
        return {}, [field_error("row", "the row has more values than the header has columns")]
    nul = [
        field_error(key if key in known else f"custom_fields.{key}", "contains a NUL character",
                    "string_nul")
        for key, cell in record.items()
        if key is not None and "\x00" in cell
    ]  # fmt: skip
    if nul:
        return {}, nul  # PostgreSQL cannot store it
    for name, value in record.items():
        assert name is not None
        # An exported file imports again unchanged: take off the apostrophe the export added.
        key, cell = name, restored(value).strip()
        if key in known:
            if key == "tags":
                fields["tags"] = [t for t in (p.strip() for p in cell.split(";")) if t]
            elif cell:
                fields[key] = cell
        elif cell:
            fields["custom_fields"][key] = cell
    try:
        values = ContactFields.model_validate(fields).model_dump()
    except ValidationError as exc:
        return {}, [
            field_error(".".join(str(p) for p in e["loc"]), e["msg"], e["type"])
            for e in exc.errors()
        ]
    return values, _identity_errors(values)


@router.get("/{contact_id}", response_model=Contact, summary="Read a contact")
async def get_contact(
    contact_id: UUID, who: ConnectedPrincipal, connection: RequestConnection
) -> Contact:
    return Contact.model_validate(dict(await _get(connection, who, contact_id)))


@router.patch("/{contact_id}", response_model=Contact, summary="Edit a contact")
async def update_contact(
    contact_id: UUID, body: ContactPatch, who: CurrentPrincipal, request: Request
) -> Contact:
    async with pool(request).acquire() as connection, connection.transaction():
        row = await _get(connection, who, contact_id)
        values = {name: row[name] for name in EDITABLE}
        for name in body.model_fields_set:
            values[name] = getattr(body, name)
        if errors := _identity_errors(values):
            raise invalid(errors)
        if "company_id" in body.model_fields_set:
            await _check_company(connection, who, body.company_id)
        updated = await connection.fetchrow(
            CONTACTS["update"],
            contact_id,
            *(values[name] for name in EDITABLE),
        )
    assert updated is not None
    return Contact.model_validate(dict(updated))


@router.delete("/{contact_id}", status_code=204, summary="Delete a contact (soft)")
async def delete_contact(
    contact_id: UUID, who: CurrentPrincipal, database: Database, clock: CurrentClock
) -> None:
    """The contact disappears from lists and selections and leaves every campaign it was in:
    its unfinished executions are cancelled (`contact_deleted`); its campaign history stays."""
    now = clock.now()
    async with transaction(database, clock) as tx:
        found = await _get(tx.connection, who, contact_id)
        only_own = found["owner_user_id"] == who.caller.user_id
        if decide_contacts(who.caller, ContactAction.DELETE_CONTACTS, only_own=only_own) is not (
            Decision.ALLOWED
        ):
            raise Problem(
                403,
                CONTACT_REFUSALS[ContactAction.DELETE_CONTACTS],
                "Permission denied",
                "a member may delete only the contacts they created",
            )
        await remove_contact(tx.connection, tx.outbox, contact_id, now, Cause(who.actor))


async def remove_contact(
    connection: DbConnection, outbox: Outbox, contact_id: UUID, now: datetime, cause: Cause
) -> None:
    """Soft-delete a contact in the caller's transaction (HTTP, or a contact.delete command):
    in the deletion's transaction, not through the scheduler, since a command would leave the
    contact live in its campaigns until it was applied (docs/architecture.md)."""
    await connection.execute(CONTACTS["lock_memberships"], contact_id)
    for row in await connection.fetch(CONTACTS["delete_contact"], contact_id, now):
        event = ExecutionProgressed(
            execution_id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            previous_status=row["previous_status"],
            status=row["status"],
            node_id=row["current_node_id"],
            detail=SkipReason.CONTACT_DELETED.value,
        )
        outbox.emit(event, key=row["campaign_id"], cause=cause, at=now)
