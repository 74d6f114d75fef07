"""/exports: the CSV file an export_contacts bulk action wrote, streamed from its chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from services.api.auth import CurrentPrincipal
from services.api.bulk_actions.routes import read
from services.api.deps import CurrentClock, CurrentSettings, Database
from services.api.problems import Problem, not_found
from shared.db.sql import Queries
from shared.domain.bulk_actions import BulkActionType

EXPORTS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter()

EXPORT_PAGE = 20  # chunks read per round trip while streaming an export


@router.get(
    "/exports/{export_id}",
    summary="Download an export (CSV)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def download_export(
    export_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
) -> StreamingResponse:
    action = await read(database, settings, who, export_id)
    if action.action != BulkActionType.EXPORT_CONTACTS:
        raise not_found("export")
    now = clock.now()
    if action.export_url is None:
        raise Problem(
            409,
            "export_not_ready",
            "Not ready",
            "the export is still being written; try again when the action completes",
        )
    if action.export_expires_at is not None and now > action.export_expires_at:
        raise Problem(410, "export_expired", "Gone", "exports are kept for 30 days")

    async def chunks() -> AsyncIterator[bytes]:
        # A page of chunks per round trip: memory stays flat however large the file.
        last = -1
        while True:
            async with database.acquire() as connection:
                page = await connection.fetch(
                    EXPORTS["export_chunks"], export_id, last, EXPORT_PAGE
                )
            for row in page:
                yield bytes(row["data"])
            if len(page) < EXPORT_PAGE:
                return
            last = page[-1]["seq"]

    filename = f"contacts-{export_id}.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
