"""POST /campaign-flows/bulk and /bulk-operations: bulk operations over campaigns (spec 000).

A request is a BulkOperationRequest command on dripline.bulk.commands, as another system would
publish it: the scheduler records the operation (it owns `bulk_operations`), resolves the
selection and applies it in batches, and answers with bulk_operation.progressed events and a
closing bulk_operation.completed. The call answers 202 with the operation, or, with `wait`, the
final result when the completed event arrives in that time (services/api/commands.py `ask`).

Until the scheduler has recorded it, an accepted operation is answered from its command record
in the outbox, as `queued` with no counts yet: a GET right after the 202 finds it. It is not
listed before it is recorded.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.api import commands, cursors, rate_limits
from services.api.auth import CurrentPrincipal, Principal
from services.api.deps import CurrentClock, CurrentSettings, Database, Pool, Replies
from services.api.paging import Keyset
from services.api.problems import not_found
from shared.db.pool import fetchrow_replanned
from shared.db.rows import BulkOperationRow, Row
from shared.db.sql import Queries
from shared.domain.bulk_operations import BulkAction, BulkStatus, CampaignFilter, ItemResult
from shared.domain.permissions import Ownership, ViewMode, can_view, effective_view_mode
from shared.domain.progress import OperationProgress
from shared.messaging.contracts import (
    MAX_CAMPAIGNS_PER_BULK,
    BulkOperationRequest,
    MessageType,
)
from shared.messaging.envelope import Envelope

BULK_OPERATIONS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(tags=["bulk operations"])

MAX_WAIT_S = 60  # the spec's own systems time out at 60 seconds
PROBLEMS_SHOWN = 1000
FINISHED = frozenset({BulkStatus.COMPLETED.value, BulkStatus.FAILED.value})


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: BulkAction
    campaign_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_CAMPAIGNS_PER_BULK
    )
    filter: CampaignFilter | None = Field(
        default=None,
        description="Select all: every campaign that matches these list filters and that the "
        "caller can see in its view mode.",
    )
    reset_completed: bool = Field(
        default=False, description="launch only: also restart completed executions."
    )
    wait: float = Field(
        default=0,
        ge=0,
        le=MAX_WAIT_S,
        description="Seconds to wait for the final result; 202 with the operation if it takes "
        "longer.",
    )

    @model_validator(mode="after")
    def _valid(self) -> BulkRequest:
        if (self.campaign_ids is None) == (self.filter is None):
            raise ValueError("give either campaign_ids or filter, not both and not neither")
        if self.reset_completed and self.action is not BulkAction.LAUNCH:
            raise ValueError("reset_completed applies to launch only")
        return self


class BulkItem(BaseModel):
    campaign_id: UUID
    result: ItemResult | None = Field(description="None while the campaign is still pending.")
    code: str | None
    message: str | None
    cancelled_executions: int
    processed_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> BulkItem:
        values = dict(row)
        if values["result"] == "pending":
            values["result"] = None
        return cls.model_validate(values)


class BulkOperation(OperationProgress):
    """An operation's view: its progress as its events carry it (`of_operation` its row), and
    what it was asked to do, by whom and when."""

    id: UUID
    origin: str
    requested_by: UUID
    requested_by_email: str
    organization_id: UUID | None
    selection: dict[str, Any]
    options: dict[str, Any]
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    errors: list[BulkItem] = Field(
        default_factory=list,
        description=f"Campaigns skipped or in error, with code and message (the first "
        f"{PROBLEMS_SHOWN}; /bulk-operations/{{id}}/items has them all).",
    )

    @classmethod
    def of(cls, row: BulkOperationRow, requested_by_email: str) -> BulkOperation:
        """The view of a recorded operation (`get` and `list` select its row with the
        requester's email beside it)."""
        return cls.of_operation(
            row, id=row.id, origin=row.origin, requested_by=row.requested_by,
            requested_by_email=requested_by_email, organization_id=row.organization_id,
            selection=row.selection, options=row.options, created_at=row.created_at,
            started_at=row.started_at, completed_at=row.completed_at,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: Row) -> BulkOperation:
        return cls.of(BulkOperationRow.from_row(row), row["requested_by_email"])


class BulkOperationPage(BaseModel):
    items: list[BulkOperation]
    next_cursor: str | None


class BulkItemPage(BaseModel):
    items: list[BulkItem]
    next_cursor: str | None


@router.post(
    "/campaign-flows/bulk",
    status_code=202,
    response_model=BulkOperation,
    summary="Enable, disable, launch, stop or delete many campaigns",
    responses={200: {"model": BulkOperation, "description": "Completed within `wait`"},
               429: {"description": "Too many bulk requests (problem+json, Retry-After)"}},
)  # fmt: skip
async def request_bulk(
    body: BulkRequest,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    replies: Replies,
) -> JSONResponse:
    async with database.acquire() as connection:
        await rate_limits.check(
            connection, f"bulk:{who.caller.user_id}", settings.bulk_rate_limit,
            settings.bulk_rate_window_s, clock.now(),
        )  # fmt: skip
    operation_id = uuid4()
    command = BulkOperationRequest(
        operation_id=operation_id,
        action=body.action,
        campaign_ids=body.campaign_ids,
        filter=body.filter,
        reset_completed=body.reset_completed,
    )
    await commands.ask(
        replies, database, clock, command, key=operation_id, actor=who.actor,
        outcomes=(MessageType.BULK_OPERATION_COMPLETED,), wait_s=body.wait,
    )  # fmt: skip
    operation = await _read(database, operation_id)
    return JSONResponse(
        operation.model_dump(mode="json"),
        status_code=200 if operation.status.value in FINISHED else 202,
        headers={"Location": f"/bulk-operations/{operation_id}"},
    )


@router.get(
    "/bulk-operations/{operation_id}", response_model=BulkOperation, summary="A bulk operation"
)
async def get_operation(
    operation_id: UUID, who: CurrentPrincipal, database: Database
) -> BulkOperation:
    operation = await _read(database, operation_id)
    _visible(who, operation)
    return operation


@router.get(
    "/bulk-operations/{operation_id}/items",
    response_model=BulkItemPage,
    summary="Every campaign's outcome",
)
async def list_items(
    operation_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    result: ItemResult | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    cursor: str | None = None,
) -> BulkItemPage:
    _visible(who, await _read(database, operation_id, problems=0))
    after = cursors.decode(cursor, cursors.IdPosition).i if cursor else None
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        rows = await connection.fetch(
            BULK_OPERATIONS["items"], operation_id, result.value if result else None, after,
            keyset.fetch,
        )  # fmt: skip
    items, next_cursor = keyset.page(
        rows, BulkItem.from_row, lambda last: cursors.encode(i=last.campaign_id)
    )
    return BulkItemPage(items=items, next_cursor=next_cursor)


@router.get("/bulk-operations", response_model=BulkOperationPage, summary="Bulk operations")
async def list_operations(
    who: CurrentPrincipal,
    database: Database,
    view_mode: ViewMode = ViewMode.OWN,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> BulkOperationPage:
    """The caller's own operations; owners and admins see every member's with view_mode=all
    while the organization's admin view is on (the audit trail of who changed what), as with
    the campaign list."""
    caller = who.caller
    everyone = effective_view_mode(caller, view_mode) is ViewMode.ALL
    before = cursors.created_position(cursor)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        rows = await connection.fetch(
            BULK_OPERATIONS["list"], caller.organization_id, caller.user_id, everyone, *before,
            keyset.fetch,
        )  # fmt: skip
    items, next_cursor = keyset.page(
        rows,
        BulkOperation.from_row,
        lambda last: cursors.created_cursor(last.created_at, last.id),
    )
    return BulkOperationPage(items=items, next_cursor=next_cursor)


def _visible(who: Principal, operation: BulkOperation) -> None:
    """By the campaigns' rule (its items name the requester's campaigns): the requester, and the
    owners and admins of its organization while admin view is on; 404 for anyone else."""
    if not can_view(who.caller, Ownership(operation.requested_by, operation.organization_id)):
        raise not_found("bulk_operation")


async def _read(
    database: Pool, operation_id: UUID, problems: int = PROBLEMS_SHOWN
) -> BulkOperation:
    """The operation as the scheduler records it, or as it was accepted while it is not recorded
    yet; 404 if it is neither."""
    async with database.acquire() as connection:
        row = await connection.fetchrow(BULK_OPERATIONS["get"], operation_id)
        if row is None:
            accepted = await fetchrow_replanned(
                connection, BULK_OPERATIONS["accepted"], str(operation_id)
            )
            if accepted is None:
                raise not_found("bulk_operation")
            return _queued(Envelope.model_validate(accepted["command"]),
                           accepted["requested_by_email"])  # fmt: skip
        errors = []
        if problems:
            errors = await connection.fetch(BULK_OPERATIONS["problems"], operation_id, problems)
    operation = BulkOperation.from_row(row)
    operation.errors = [BulkItem.from_row(r) for r in errors]
    return operation


def _queued(command: Envelope, email: str) -> BulkOperation:
    """An accepted request the scheduler has not recorded yet, from its command: what the
    scheduler will record (the same selection, options and time), with nothing done yet."""
    request = BulkOperationRequest.model_validate(command.payload)
    assert command.actor is not None  # the contract requires one
    return BulkOperation(
        id=request.operation_id, action=request.action, status=BulkStatus.QUEUED,
        origin="http", requested_by=command.actor.user_id, requested_by_email=email,
        organization_id=command.actor.organization_id,
        selection=request.model_dump(mode="json", include={"campaign_ids", "filter"},
                                     exclude_none=True),
        options={"reset_completed": request.reset_completed}, total=0, processed=0,
        success_count=0, skipped_count=0, error_count=0, cancelled_executions=0,
        error_message=None, created_at=command.occurred_at, started_at=None, completed_at=None,
    )  # fmt: skip
