"""/companies: the organizations contacts work at (issue 19; spec 003's "Manage Companies").
A contact belongs to at most one; the bulk actions add_to_company and remove_from_company
(services/scheduler/bulk_actions.py) and PATCH /contacts/{id} put it there."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from services.api import cursors
from services.api.auth import CurrentPrincipal
from services.api.contacts import FieldValue, check_custom_fields
from services.api.deps import CurrentClock, Database
from services.api.paging import Keyset
from services.api.problems import field_error, invalid
from services.api.records import authorize_record
from shared.db.campaign_filter import like_pattern
from shared.db.sql import Queries
from shared.domain.crm import normal_channel, normal_domain
from shared.domain.permissions import RecordAction

COMPANIES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/companies", tags=["companies"])

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _domain(value: str | None) -> str | None:
    return normal_domain(value) if value is not None and value.strip() else None


def _channel(value: str | None) -> str | None:
    return normal_channel(value) if value is not None and value.strip() else None


class CompanyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    domain: str | None = Field(default=None, max_length=300, description="e.g. acme.com")
    telegram_channel: str | None = Field(
        default=None, max_length=300, description="@name, name or https://t.me/name"
    )
    custom_fields: dict[str, FieldValue] = Field(default_factory=dict)

    _domain = field_validator("domain")(_domain)
    _channel = field_validator("telegram_channel")(_channel)
    _custom = field_validator("custom_fields")(check_custom_fields)


class CompanyPatch(BaseModel):
    """Only the fields present change; null clears domain and channel. custom_fields replaces
    the whole set ({} clears it)."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    domain: str | None = Field(default=None, max_length=300)
    telegram_channel: str | None = Field(default=None, max_length=300)
    custom_fields: dict[str, FieldValue] | None = None

    _domain = field_validator("domain")(_domain)
    _channel = field_validator("telegram_channel")(_channel)

    @field_validator("custom_fields")
    @classmethod
    def _custom(cls, value: dict[str, FieldValue] | None) -> dict[str, FieldValue] | None:
        return check_custom_fields(value) if value is not None else None

    @field_validator("name", "custom_fields", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null")
        return value


class Company(BaseModel):
    id: UUID
    organization_id: UUID | None
    owner_user_id: UUID
    name: str
    domain: str | None
    telegram_channel: str | None
    custom_fields: dict[str, Any]
    contacts: int = Field(description="Live contacts that belong to the company.")
    created_at: datetime
    updated_at: datetime


class CompanyPage(BaseModel):
    items: list[Company]
    next_cursor: str | None


@router.post("", status_code=201, response_model=Company, summary="Create a company")
async def create_company(
    body: CompanyCreate, who: CurrentPrincipal, database: Database, clock: CurrentClock
) -> Company:
    async with database.acquire() as connection:
        row = await connection.fetchrow(
            COMPANIES["insert"],
            who.caller.organization_id,
            who.caller.user_id,
            body.name,
            body.domain,
            body.telegram_channel,
            body.custom_fields,
            clock.now(),
        )
    assert row is not None
    return Company.model_validate(dict(row))


@router.get("", response_model=CompanyPage, summary="List companies")
async def list_companies(
    who: CurrentPrincipal,
    database: Database,
    search: Annotated[str | None, Query(max_length=200)] = None,
    domain: Annotated[str | None, Query(max_length=300)] = None,
    telegram_channel: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> CompanyPage:
    """Newest first. `domain` and `telegram_channel` match exactly, in any spelling the create
    accepts (https://www.acme.com/ finds acme.com)."""
    before = cursors.created_position(cursor)
    exact_domain = _query(_domain, "domain", domain)
    exact_channel = _query(_channel, "telegram_channel", telegram_channel)
    keyset = Keyset(limit)
    async with database.acquire() as connection:
        rows = await connection.fetch(
            COMPANIES["list"],
            who.caller.organization_id,
            who.caller.user_id,
            like_pattern(search.strip()) if search and search.strip() else None,
            exact_domain,
            exact_channel,
            *before,
            keyset.fetch,
        )
    items, next_cursor = keyset.page(
        rows,
        lambda row: Company.model_validate(dict(row)),
        lambda last: cursors.created_cursor(last.created_at, last.id),
    )
    return CompanyPage(items=items, next_cursor=next_cursor)


def _query(normal: Callable[[str | None], str | None], name: str, value: str | None) -> str | None:
    try:
        return normal(value)
    except ValueError as exc:
        raise invalid([field_error(f"query.{name}", str(exc))]) from None


@router.get("/{company_id}", response_model=Company, summary="Read a company")
async def get_company(company_id: UUID, who: CurrentPrincipal, database: Database) -> Company:
    async with database.acquire() as connection:
        row = await connection.fetchrow(COMPANIES["get"], company_id)
    return Company.model_validate(dict(authorize_record(who, row, "company", RecordAction.VIEW)))


@router.patch("/{company_id}", response_model=Company, summary="Edit a company")
async def update_company(
    company_id: UUID,
    body: CompanyPatch,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
) -> Company:
    async with database.acquire() as connection, connection.transaction():
        row = authorize_record(
            who, await connection.fetchrow(COMPANIES["lock"], company_id), "company",
            RecordAction.EDIT,
        )  # fmt: skip
        values = {k: row[k] for k in ("name", "domain", "telegram_channel", "custom_fields")}
        values.update({name: getattr(body, name) for name in body.model_fields_set})
        await connection.execute(
            COMPANIES["update"],
            company_id,
            values["name"],
            values["domain"],
            values["telegram_channel"],
            values["custom_fields"],
            clock.now(),
        )
        updated = await connection.fetchrow(COMPANIES["get"], company_id)
    assert updated is not None
    return Company.model_validate(dict(updated))


@router.delete("/{company_id}", status_code=204, summary="Delete a company")
async def delete_company(company_id: UUID, who: CurrentPrincipal, database: Database) -> None:
    """Its contacts stay, without a company. Another member's company is for owners and
    admins to delete (403 for a member)."""
    async with database.acquire() as connection, connection.transaction():
        authorize_record(
            who, await connection.fetchrow(COMPANIES["lock"], company_id), "company",
            RecordAction.DELETE,
        )  # fmt: skip
        await connection.execute(COMPANIES["delete"], company_id)
