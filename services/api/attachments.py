"""/attachments: a photo or document uploaded once and named by send steps (`attachment_id` on a
send_message node, docs/flows.md). The body is the file itself, its Content-Type its type;
shared.domain.attachments decides what is accepted. Any member of the organization (or the
user in personal mode) may upload, and may name the organization's attachments in its flows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from services.api.auth import CurrentPrincipal
from services.api.deps import CurrentClock, CurrentSettings, Database
from services.api.problems import Problem, not_found
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.attachments import (
    DOCUMENT_TYPES,
    PHOTO_TYPES,
    AttachmentKind,
    Refused,
    accept,
    clean_filename,
)
from shared.domain.permissions import Caller

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/attachments", tags=["attachments"])


class Attachment(BaseModel):
    id: UUID
    organization_id: UUID | None
    owner_user_id: UUID
    kind: AttachmentKind
    content_type: str
    filename: str
    size_bytes: int
    sha256: str
    created_at: datetime


_BODY = {
    "requestBody": {
        "content": {
            t: {"schema": {"type": "string", "format": "binary"}}
            for t in sorted({*PHOTO_TYPES, *DOCUMENT_TYPES})
        },
        "required": True,
    }
}


@router.post(
    "",
    status_code=201,
    response_model=Attachment,
    summary="Upload a photo or document",
    openapi_extra=_BODY,
)
async def upload(
    who: CurrentPrincipal,
    request: Request,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    filename: Annotated[str | None, Query(max_length=255)] = None,
) -> Attachment:
    """The body is the file (at most DRIPLINE_MAX_ATTACHMENT_BYTES); its Content-Type says what
    it is: image/jpeg or image/png is sent as a photo (its bytes must match), the document types
    listed in the request body's content as files. 413 `attachment_too_large`, 415
    `attachment_type_not_allowed`, 422 `attachment_empty` or `attachment_content_mismatch`."""
    data = await request.body()
    verdict = accept(request.headers.get("content-type"), data, settings.max_attachment_bytes)
    if isinstance(verdict, Refused):
        raise Problem(verdict.status, verdict.code, "Attachment refused", verdict.detail)
    caller = who.caller
    async with database.acquire() as connection:
        row = await connection.fetchrow(
            QUERIES["insert"],
            uuid4(),
            caller.organization_id,
            caller.user_id,
            verdict.kind.value,
            verdict.content_type,
            clean_filename(filename, verdict.kind),
            len(data),
            verdict.sha256,
            data,
            clock.now(),
        )
    assert row is not None
    return Attachment(**dict(row))


@router.get("/{attachment_id}", response_model=Attachment, summary="An attachment's details")
async def get(who: CurrentPrincipal, attachment_id: UUID, database: Database) -> Attachment:
    async with database.acquire() as connection:
        row = await connection.fetchrow(
            QUERIES["get"], attachment_id, who.caller.organization_id, who.caller.user_id
        )
    if row is None:
        raise not_found("attachment")
    return Attachment(**dict(row))


async def flow_errors(
    connection: DbConnection, caller: Caller, flow: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """`unknown_attachment` for each send step naming an attachment the caller may not use (a
    malformed id is the flow validation's `invalid_field`)."""
    nodes = (flow or {}).get("nodes")
    named: list[tuple[int, Any, UUID]] = []
    for index, node in enumerate(nodes if isinstance(nodes, list) else []):
        if not isinstance(node, Mapping) or node.get("attachment_id") is None:
            continue
        try:
            named.append((index, node.get("id"), UUID(str(node["attachment_id"]))))
        except ValueError:
            continue
    if not named:
        return []
    rows = await connection.fetch(
        QUERIES["known"], [a for _, _, a in named], caller.organization_id, caller.user_id
    )
    known = {r["id"] for r in rows}
    return [
        {
            "type": "unknown_attachment",
            "code": "unknown_attachment",
            "field": f"flow.nodes[{index}].attachment_id",
            "message": f"no attachment {attachment} was uploaded by this organization",
            **({"node_id": node_id} if isinstance(node_id, str) else {}),
        }
        for index, node_id, attachment in named
        if attachment not in known
    ]
