"""/campaign-flows/{id}/logs, /logs/export and /activities: the execution audit trail (spec 001,
"Logs Tab" and "Recent Activities"). The sender writes execution_logs; docs/logs.md has the
events, the search index and the export."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.api import cursors
from services.api.auth import CurrentPrincipal, pool
from services.api.campaign_access import authorized
from services.api.deps import CurrentClock, Database
from services.api.paging import Keyset
from services.api.problems import field_error, invalid
from shared.csv_export import csv_bytes
from shared.db.campaign_filter import Where, like_pattern
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.flows import NodeType
from shared.domain.permissions import Action

router = APIRouter(prefix="/campaign-flows", tags=["logs"])
LOGS = Queries.load(Path(__file__).with_name("logs.sql"))

EXPORT_PAGE = 5000  # rows per query while exporting: memory stays flat however long the log
MIN_SEARCH_RUN = 3  # the trigram index needs a run of 3 letters or digits to narrow anything
_SEARCHABLE = re.compile(rf"[^\W_]{{{MIN_SEARCH_RUN}}}")
SUMMARY_TEXT = 80  # characters of a message quoted in an activity's summary


class LogEvent(StrEnum):
    """What an entry records (the sender writes them)."""

    NODE_EXECUTED = "node_executed"  # the flow passed through a node (message: what it did)
    EXECUTION_FAILED = "execution_failed"  # message: the reason
    MESSAGE_SENT = "message_sent"  # Telegram accepted a message (message: its text)
    DELIVERY_CONFIRMED = "delivery_confirmed"  # first read or reply after it (message: which)
    REPLY_RECEIVED = "reply_received"  # the contact wrote back (message: the reply)
    # A send not made (message: why, e.g. contact_deleted, account_deleted; docs/engine.md)
    SEND_SKIPPED = "send_skipped"
    # An opt-out reply ended it (message: opted_out for the execution replied to,
    # do_not_contact for the person's others; docs/do-not-contact.md)
    OPTED_OUT = "opted_out"
    # Another contact of the same company replied in the campaign (stop_company_on_reply):
    # message cancelled or paused; details the execution replied to and the company
    # (docs/companies.md)
    COMPANY_REPLIED = "company_replied"
    # A test send to the account's own Saved Messages (message: its text; docs/campaigns.md)
    TEST_SENT = "test_sent"
    TEST_SEND_FAILED = "test_send_failed"  # message: why Telegram refused it


class LogStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class ActivityType(StrEnum):
    MESSAGE_SENT = "message_sent"
    RESPONSE_DETECTED = "response_detected"
    DELIVERY_CONFIRMED = "delivery_confirmed"
    CAMPAIGN_ACTIVITY = "campaign_activity"


# The feed's types of the important log events (the rest of the feed is campaign events).
_ACTIVITY_OF = {
    LogEvent.MESSAGE_SENT: ActivityType.MESSAGE_SENT,
    LogEvent.DELIVERY_CONFIRMED: ActivityType.DELIVERY_CONFIRMED,
    LogEvent.REPLY_RECEIVED: ActivityType.RESPONSE_DETECTED,
    LogEvent.EXECUTION_FAILED: ActivityType.CAMPAIGN_ACTIVITY,
}


class LogContact(BaseModel):
    id: UUID
    name: str | None = Field(description="First and last name, else @username, phone or user id")


class LogEntry(BaseModel):
    id: int
    executed_at: datetime
    execution_id: UUID | None
    contact: LogContact | None
    node_id: str | None
    node_type: str | None
    event: str
    status: str
    message: str | None
    details: dict[str, Any]


class LogPage(BaseModel):
    items: list[LogEntry]
    next_cursor: str | None


class Activity(BaseModel):
    type: ActivityType
    event: str = Field(description="The log event, or the campaign event's message type")
    occurred_at: datetime
    execution_id: UUID | None
    contact: LogContact | None
    node_id: str | None
    node_type: str | None
    status: str | None
    summary: str


class ActivityFeed(BaseModel):
    items: list[Activity]


@dataclass(frozen=True)
class LogFilter:
    execution_id: UUID | None
    node_types: list[NodeType]
    statuses: list[LogStatus]
    events: list[LogEvent]
    search: str | None


def log_filter(
    execution_id: UUID | None = None,
    node_type: Annotated[list[NodeType] | None, Query()] = None,
    status: Annotated[list[LogStatus] | None, Query(description="The entry's status")] = None,
    event: Annotated[list[LogEvent] | None, Query()] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Part of the contact's first name, last name or username, or of the "
            "message text (case-insensitive); at least 3 letters or digits in a row",
        ),
    ] = None,
    q: Annotated[str | None, Query(max_length=200, description="The same as search")] = None,
) -> LogFilter:
    """The filters the list and the export share; repeat a parameter to allow several values."""
    if search is not None and q is not None and search != q:
        raise invalid([field_error("q", "q and search are the same filter; give one of them")])
    field, term = ("search", search) if search is not None else ("q", q)
    if term is not None:
        term = term.strip()
        if not _SEARCHABLE.search(term):
            raise invalid(
                [
                    field_error(
                        field,
                        f"search for at least {MIN_SEARCH_RUN} letters or digits in a row",
                        "too_short",
                    )
                ]
            )
    return LogFilter(execution_id, node_type or [], status or [], event or [], term)


Filters = Annotated[LogFilter, Depends(log_filter)]
Position = tuple[datetime, int]


def _where(campaign_id: UUID, selection: LogFilter, after: Position | None) -> Where:
    where = Where()
    where.add(f"l.campaign_id = {where.bind(campaign_id)}")
    if selection.execution_id is not None:
        where.add(f"l.execution_id = {where.bind(selection.execution_id)}")
    for column, values in (
        ("node_type", selection.node_types),
        ("status", selection.statuses),
        ("event", selection.events),
    ):
        if values:
            where.add(f"l.{column} = ANY({where.bind([v.value for v in values])}::text[])")
    if selection.search is not None:
        pattern = f"%{like_pattern(selection.search)}%"
        where.add(LOGS["search"].format(pattern=where.bind(pattern)))
    if after is not None:
        at, entry_id = where.bind(after[0]), where.bind(after[1])
        where.add(f"(l.created_at, l.id) < ({at}::timestamptz, {entry_id}::bigint)")
    return where


PageBlock = Literal["page", "export_csv", "export_jsonl"]


async def _page(
    connection: DbConnection,
    block: PageBlock,
    campaign_id: UUID,
    selection: LogFilter,
    after: Position | None,
    limit: int,
) -> list[asyncpg.Record]:
    """One page of entries, in the shape of `block` (the page, or an export's text of it)."""
    where = _where(campaign_id, selection, after)
    query = LOGS["page"].format(where=where.sql, limit=where.bind(limit))
    if block != "page":
        query = LOGS[block].format(page=query)
    async with connection.transaction(readonly=True):
        await connection.execute(LOGS["custom_plans"])
        return await connection.fetch(query, *where.values)


def _position(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    position = cursors.decode(cursor, cursors.LogPosition)
    return position.t, position.i


def _contact(row: asyncpg.Record) -> dict[str, Any] | None:
    if row["contact_id"] is None:
        return None
    return {"id": row["contact_id"], "name": row["contact_name"]}


def _entry(row: asyncpg.Record) -> LogEntry:
    return LogEntry.model_validate(
        {
            "id": row["id"],
            "executed_at": row["executed_at"],
            "execution_id": row["execution_id"],
            "contact": _contact(row),
            "node_id": row["node_id"],
            "node_type": row["node_type"],
            "event": row["event"],
            "status": row["status"],
            "message": row["message"],
            "details": row["details"],
        }
    )


@router.get("/{campaign_id}/logs", response_model=LogPage, summary="The campaign's execution log")
async def list_logs(
    campaign_id: UUID,
    who: CurrentPrincipal,
    request: Request,
    selection: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> LogPage:
    """Every entry of every execution, newest first, in keyset pages (next_cursor). Filters
    combine with AND; the values of one repeated filter with OR."""
    after = _position(cursor)
    keyset = Keyset(limit)
    async with pool(request).acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
        rows = await _page(connection, "page", campaign_id, selection, after, keyset.fetch)
    # The cursor is the entry's created_at and id, read from the row (the entry shows neither).
    page, next_cursor = keyset.page(
        rows,
        lambda row: row,
        lambda last: cursors.encode(t=last["created_at"].isoformat(), i=last["id"]),
    )
    return LogPage(items=[_entry(row) for row in page], next_cursor=next_cursor)


CSV_COLUMNS = ("id", "executed_at", "execution_id", "contact_id", "contact_name", "node_id",
               "node_type", "event", "status", "message", "details")  # fmt: skip


def _csv(rows: Sequence[asyncpg.Record], header: bool) -> bytes:
    cells = [row["cells"] for row in rows]
    return csv_bytes([CSV_COLUMNS, *cells] if header else cells)


def _jsonl(rows: Sequence[asyncpg.Record]) -> bytes:
    return "".join(f"{row['line']}\n" for row in rows).encode()


ExportFormat = Literal["csv", "jsonl"]
_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


@router.get(
    "/{campaign_id}/logs/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
    summary="Export the campaign's execution log",
)
async def export_logs(
    campaign_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    selection: Filters,
    export_format: Annotated[ExportFormat, Query(alias="format")],
) -> StreamingResponse:
    """The entries the list would page through with the same filters, in the same order, as
    CSV (a header row; details as JSON text) or JSON Lines (one list item per line), streamed."""
    async with database.acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
    now = clock.now()
    block: PageBlock = "export_csv" if export_format == "csv" else "export_jsonl"

    async def fetch(after: Position | None) -> list[asyncpg.Record]:
        # Keyset pages, each on a connection borrowed for one query: nothing accumulates, and a
        # slow reader holds no connection or snapshot between pages.
        async with database.acquire() as connection:
            return await _page(connection, block, campaign_id, selection, after, EXPORT_PAGE)

    async def body() -> AsyncIterator[bytes]:
        # One page ahead: the database reads the next page while this one is being sent.
        ahead = asyncio.create_task(fetch(None))
        try:
            first = True
            while True:
                rows = await ahead
                full = len(rows) == EXPORT_PAGE
                if full:
                    ahead = asyncio.create_task(fetch((rows[-1]["created_at"], rows[-1]["id"])))
                if export_format == "csv":
                    yield _csv(rows, header=first)
                elif rows:
                    yield _jsonl(rows)
                first = False
                if not full:
                    return
        finally:
            ahead.cancel()  # the reader went away: the page read ahead is not needed

    filename = f"campaign-{campaign_id}-logs-{now:%Y%m%dT%H%M%SZ}.{export_format}"
    return StreamingResponse(
        body(),
        media_type=_MEDIA_TYPES[export_format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _clip(text: str | None) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= SUMMARY_TEXT else text[: SUMMARY_TEXT - 1] + "…"


def _summary(event: LogEvent, row: asyncpg.Record) -> str:
    who = row["contact_name"] or "a contact"
    match event:
        case LogEvent.MESSAGE_SENT:
            return f'Message sent to {who}: "{_clip(row["message"])}"'
        case LogEvent.DELIVERY_CONFIRMED:
            return f"Message to {who} delivered (confirmed by a {row['message'] or 'read'})"
        case LogEvent.REPLY_RECEIVED:
            return f'{who} replied: "{_clip(row["message"])}"'
        case _:
            return f"Execution for {who} failed at node {row['node_id']}: {row['message']}"


def _activity(row: asyncpg.Record) -> Activity:
    if row["source"] == "campaign":
        return Activity(
            type=ActivityType.CAMPAIGN_ACTIVITY,
            event=row["kind"],
            occurred_at=row["occurred_at"],
            execution_id=None,
            contact=None,
            node_id=None,
            node_type=None,
            status=None,
            summary=row["summary"],
        )
    event = LogEvent(row["kind"])
    contact = _contact(row)
    return Activity(
        type=_ACTIVITY_OF[event],
        event=event.value,
        occurred_at=row["occurred_at"],
        execution_id=row["execution_id"],
        contact=None if contact is None else LogContact.model_validate(contact),
        node_id=row["node_id"],
        node_type=row["node_type"],
        status=row["status"],
        summary=_summary(event, row),
    )


@router.get(
    "/{campaign_id}/activities",
    response_model=ActivityFeed,
    summary="The campaign's recent activities",
)
async def recent_activities(
    campaign_id: UUID,
    who: CurrentPrincipal,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ActivityFeed:
    """The newest entries that matter, newest first: messages sent (message_sent), first
    delivery confirmations (delivery_confirmed), replies (response_detected), failed executions
    and the campaign's own events (campaign_activity)."""
    async with pool(request).acquire() as connection:
        await authorized(connection, who, campaign_id, Action.VIEW)
        async with connection.transaction(readonly=True):
            await connection.execute(LOGS["custom_plans"])
            rows = await connection.fetch(LOGS["activities"], campaign_id, limit)
    return ActivityFeed(items=[_activity(row) for row in rows])
