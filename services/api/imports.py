"""/imports: an upload of contacts (CSV or JSONL, any size) for an `import_contacts` bulk action
(issue 19, item 4; docs/bulk.md, "Imports").

The body is streamed: read piece by piece, cut into records (shared/domain/imports.Reader) and
written to PostgreSQL a thousand records per statement (contact_import_rows), all in one
transaction, so a file of any size never sits in memory and a refused file leaves nothing. It
goes to PostgreSQL rather than to a file under the state directory because every API instance
and every scheduler reach the database, not each other's disks, and the rows are then claimed
by batch with the same locking as every bulk action's items. `POST /bulk-actions` with
`action: import_contacts` and `params.import_id` then applies it as any bulk action. The
synchronous `POST /contacts/import` stays for small files."""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from services.api.auth import CurrentPrincipal, Principal
from services.api.deps import CurrentClock, CurrentSettings, Database
from services.api.guard import payload_too_large
from services.api.problems import Problem, not_found
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.imports import FileRefused, Format, Reader, Record

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))
router = APIRouter(prefix="/imports", tags=["bulk actions"])
PIECE = 1000  # records per INSERT
JSONL_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")


class ContactImport(BaseModel):
    id: UUID
    format: Format
    columns: list[str]
    rows: int
    bytes: int
    bulk_action_id: UUID | None
    created_at: datetime


@router.post(
    "",
    status_code=201,
    response_model=ContactImport,
    summary="Upload contacts to import (CSV or JSONL, streamed)",
    openapi_extra={
        "requestBody": {
            "content": {t: {"schema": {"type": "string"}} for t in ("text/csv", *JSONL_TYPES)},
            "required": True,
        }
    },
)
async def upload(
    who: CurrentPrincipal,
    request: Request,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    format: Annotated[
        Literal["csv", "jsonl"] | None,
        Query(description="Default: from the Content-Type (JSON Lines types are jsonl)."),
    ] = None,
) -> ContactImport:
    """The file is the body. 422 `import_empty` (no rows), `import_malformed` (not UTF-8, a
    header without an identifier column or with a column twice, a quote never closed), 413
    `import_row_too_large` (a row over 65,536 characters) or `payload_too_large` (over
    DRIPLINE_MAX_BULK_IMPORT_BYTES); nothing is kept then. A row that cannot be read is kept
    and fails with its line when the action applies it."""
    chosen = Format(format) if format else _format_of(request.headers.get("content-type"))
    import_id = uuid4()
    async with database.acquire() as connection, connection.transaction():
        await connection.execute(
            QUERIES["insert"],
            import_id,
            who.caller.organization_id,
            who.caller.user_id,
            chosen.value,
            clock.now(),
        )
        row = await store(
            connection, import_id, chosen, _pieces(request, settings.max_bulk_import_bytes)
        )
    return ContactImport.model_validate(dict(row))


@router.get("/{import_id}", response_model=ContactImport, summary="An upload")
async def get_import(import_id: UUID, who: CurrentPrincipal, database: Database) -> ContactImport:
    async with database.acquire() as connection:
        row = await find(connection, who, import_id)
    return ContactImport.model_validate(dict(row))


async def find(connection: DbConnection, who: Principal, import_id: UUID) -> dict[str, object]:
    """An upload is its uploader's only (in the context it was made in); 404 otherwise."""
    row = await connection.fetchrow(
        QUERIES["get"], import_id, who.caller.organization_id, who.caller.user_id
    )
    if row is None:
        raise not_found("import")
    return dict(row)


async def store(
    connection: DbConnection, import_id: UUID, format: Format, pieces: AsyncIterator[bytes]
) -> dict[str, object]:
    """Read the pieces into the upload's rows; raises Problem for a file refused whole."""
    reader = Reader(format)
    decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
    pending: list[Record] = []
    size = 0
    try:
        async for piece in pieces:
            size += len(piece)
            pending.extend(reader.feed(_decoded(decoder, piece, size)))
            if len(pending) >= PIECE:
                await _insert(connection, import_id, pending)
                pending = []
        pending.extend(reader.feed(_decoded(decoder, b"", size, final=True)))
        pending.extend(reader.finish())
    except FileRefused as refused:
        status = 413 if refused.code == "import_row_too_large" else 422
        raise Problem(status, refused.code, "Import refused", refused.detail) from None
    await _insert(connection, import_id, pending)
    row = await connection.fetchrow(
        QUERIES["close"], import_id, reader.columns or [], reader.records, size
    )
    assert row is not None
    return dict(row)


def _decoded(
    decoder: codecs.IncrementalDecoder, piece: bytes, size: int, final: bool = False
) -> str:
    try:
        return decoder.decode(piece, final)
    except UnicodeDecodeError as exc:
        raise FileRefused(
            "import_malformed", f"the file must be UTF-8 (near byte {size}): {exc.reason}"
        ) from None


async def _insert(connection: DbConnection, import_id: UUID, records: list[Record]) -> None:
    if not records:
        return
    await connection.execute(
        QUERIES["insert_rows"],
        import_id,
        [r.line for r in records],
        [None if r.data is None else json.dumps(r.data, ensure_ascii=False) for r in records],
        [r.parse_error for r in records],
    )


async def _pieces(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The body as it arrives; 413 (the transaction rolls back) once past `limit` bytes."""
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise payload_too_large(limit)
        if piece:
            yield piece


def _format_of(content_type: str | None) -> Format:
    media = (content_type or "").split(";")[0].strip().lower()
    if media in JSONL_TYPES:
        return Format.JSONL
    if media in ("text/csv", "text/plain", ""):
        return Format.CSV
    raise Problem(
        415,
        "unsupported_media_type",
        "Unsupported media type",
        "send text/csv or application/x-ndjson (JSON Lines), or name the format with ?format=",
    )
