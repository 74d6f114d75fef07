"""/campaign-flows: create, read, list and launch campaigns."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.problems import Problem, forbidden, not_found
from services.api.replies import ReplyWaiter
from services.api.sql import QUERIES
from shared.db.pool import DbConnection
from shared.domain import permissions
from shared.domain.campaigns import CampaignStatus, LaunchType
from shared.messaging.contracts import CampaignCommandRejected, CampaignLaunch, MessageType
from shared.messaging.envelope import new_envelope
from shared.messaging.outbox import Outbox
from shared.messaging.topics import Topic

router = APIRouter(prefix="/campaign-flows", tags=["campaigns"])


class Flow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[dict[str, Any]] = Field(default_factory=list)
    edges: list[dict[str, Any]] = Field(default_factory=list)


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    telegram_account_id: UUID | None = None
    timezone: str = "UTC"
    launch_type: LaunchType = LaunchType.MANUAL
    scheduled_at: AwareDatetime | None = None
    recurrence: str | None = None
    flow: Flow = Field(default_factory=Flow)
    settings: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list, max_length=50)

    @field_validator("timezone")
    @classmethod
    def known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def launch_fields(self) -> CampaignCreate:
        if self.launch_type is LaunchType.SCHEDULE and self.scheduled_at is None:
            raise ValueError("launch_type 'schedule' needs scheduled_at")
        if self.launch_type is LaunchType.RECURRING and not self.recurrence:
            raise ValueError("launch_type 'recurring' needs recurrence (a cron rule)")
        return self


class Campaign(BaseModel):
    id: UUID
    organization_id: UUID | None
    created_by: UUID
    name: str
    description: str | None
    telegram_account_id: UUID | None
    timezone: str
    launch_type: LaunchType
    scheduled_at: datetime | None
    recurrence: str | None
    status: CampaignStatus
    enabled: bool
    failure_reason: str | None
    flow: Flow
    settings: dict[str, Any]
    tags: list[str]
    launched_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Campaign:
        return cls.model_validate(dict(row))


class CampaignPage(BaseModel):
    items: list[Campaign]
    next_cursor: str | None


class CommandAccepted(BaseModel):
    command_id: UUID
    status: Literal["accepted"] = "accepted"
    detail: str


@router.post("", status_code=201, response_model=Campaign, summary="Create a campaign")
async def create_campaign(
    body: CampaignCreate, who: CurrentPrincipal, request: Request
) -> Campaign:
    async with pool(request).acquire() as connection:
        row = await connection.fetchrow(
            QUERIES["insert_campaign"],
            who.caller.organization_id, who.caller.user_id, body.name, body.description,
            body.telegram_account_id, body.timezone, body.launch_type.value, body.scheduled_at,
            body.recurrence, body.flow.model_dump(), body.settings, body.tags,
        )  # fmt: skip
    assert row is not None
    return Campaign.from_row(row)


@router.get("", response_model=CampaignPage, summary="List the caller's campaigns")
async def list_campaigns(
    who: CurrentPrincipal,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> CampaignPage:
    after_created, after_id = _decode_cursor(cursor) if cursor else (None, None)
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(
            QUERIES["list_own_campaigns"], who.caller.user_id, who.caller.organization_id,
            after_created, after_id, limit + 1,
        )  # fmt: skip
    items = [Campaign.from_row(row) for row in rows[:limit]]
    next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
    return CampaignPage(items=items, next_cursor=next_cursor)


@router.get("/{campaign_id}", response_model=Campaign, summary="Read a campaign")
async def get_campaign(campaign_id: UUID, who: CurrentPrincipal, request: Request) -> Campaign:
    async with pool(request).acquire() as connection:
        row = await _authorized(connection, who, campaign_id, permissions.Action.VIEW)
    return Campaign.from_row(row)


# Codes of a rejected command, as HTTP statuses.
_REJECTION_STATUS = {"campaign_not_found": 404, "permission_denied": 403}


@router.post(
    "/{campaign_id}/launch",
    response_model=Campaign,
    responses={202: {"model": CommandAccepted}, 409: {"description": "Status conflict"}},
    summary="Launch a campaign",
)
async def launch_campaign(
    campaign_id: UUID, who: CurrentPrincipal, request: Request, reset_completed: bool = False
) -> Campaign | JSONResponse:
    service = request.app.state.service
    waiter: ReplyWaiter = request.app.state.replies
    command = new_envelope(
        type=MessageType.CAMPAIGN_LAUNCH,
        payload=CampaignLaunch(campaign_id=campaign_id, reset_completed=reset_completed),
        occurred_at=service.clock.now(),
        actor=who.actor,
        correlation_id=uuid4(),
    )
    async with waiter.expect(command.correlation_id) as outcome:
        async with pool(request).acquire() as connection, connection.transaction():
            await _authorized(connection, who, campaign_id, permissions.Action.LAUNCH)
            outbox = Outbox()
            outbox.add(Topic.CAMPAIGN_COMMANDS, str(campaign_id), command)
            await outbox.flush(connection)
        try:
            reply = await asyncio.wait_for(outcome, service.settings.command_wait_s)
        except TimeoutError:
            accepted = CommandAccepted(
                command_id=command.message_id,
                detail="the launch was accepted and will be applied shortly",
            )
            return JSONResponse(accepted.model_dump(mode="json"), status_code=202)
    if isinstance(reply.payload, CampaignCommandRejected):
        rejection = reply.payload
        status = _REJECTION_STATUS.get(rejection.code, 409)
        raise Problem(status, rejection.code, "Command rejected", rejection.detail)
    async with pool(request).acquire() as connection:
        row = await connection.fetchrow(QUERIES["get_campaign"], campaign_id)
    assert row is not None
    return Campaign.from_row(row)


async def _authorized(
    connection: DbConnection,
    who: Principal,
    campaign_id: UUID,
    action: permissions.Action,
) -> asyncpg.Record:
    row = await connection.fetchrow(QUERIES["get_campaign"], campaign_id)
    if row is None or row["deleted_at"] is not None:
        raise not_found("campaign")
    ownership = permissions.CampaignOwnership(row["created_by"], row["organization_id"])
    decision = permissions.decide(who.caller, ownership, action)
    if decision is permissions.Decision.INVISIBLE:
        raise not_found("campaign")
    if decision is permissions.Decision.FORBIDDEN:
        raise forbidden(f"the caller may not {action.value} this campaign")
    record: asyncpg.Record = row
    return record


def _encode_cursor(last: Campaign) -> str:
    raw = json.dumps({"c": last.created_at.isoformat(), "i": str(last.id)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return datetime.fromisoformat(raw["c"]), UUID(raw["i"])
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise Problem(422, "invalid_cursor", "Invalid cursor",
                      "the cursor is not one this API returned") from exc  # fmt: skip
