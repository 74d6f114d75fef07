"""/organizations and their members: roles owner, admin and member, and admin_view_enabled."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.problems import Problem, forbidden, not_found
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.breaker import (
    DEFAULT_HYSTERESIS,
    DEFAULT_MIN_ACCOUNTS,
    DEFAULT_SHARE,
    BreakerPolicy,
    policy_of,
)
from shared.domain.do_not_contact import DEFAULT_OPT_OUT_PHRASES, check_phrases
from shared.domain.permissions import Role, can_manage_organization

ORGANIZATIONS = Queries.load(Path(__file__).with_suffix(".sql"))
# Inviting by e-mail creates the user as accounts.py does (upsert_user, in its file).
ACCOUNTS = Queries.load(Path(__file__).with_name("accounts.sql"))

router = APIRouter(prefix="/organizations", tags=["organizations"])

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
OrgName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class OrganizationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: OrgName
    admin_view_enabled: bool = False


class FleetBreaker(BaseModel):
    """The fleet circuit breaker's policy (docs/accounts.md): the organization's sending pauses
    when at least `share` of its sending accounts, and at least `min_accounts` of them, are
    limited, frozen or cooling down within the last hour; it resumes below
    `share - hysteresis`."""

    model_config = ConfigDict(extra="forbid")
    share: float = Field(default=DEFAULT_SHARE, gt=0, le=1)
    min_accounts: int = Field(default=DEFAULT_MIN_ACCOUNTS, ge=1, le=100_000)
    hysteresis: float = Field(default=DEFAULT_HYSTERESIS, ge=0, lt=1)


class OrganizationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: OrgName | None = None
    admin_view_enabled: bool | None = None
    opt_out_phrases: list[str] | None = Field(
        default=None,
        description="Replies that opt a person out (whole words, any case or accent); they "
        "replace the defaults. null restores the defaults.",
    )

    recontact_after_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Do not message a person another campaign of the organization messaged "
        "within this many days (skipped as recently_contacted). null turns it off.",
    )

    fleet_breaker: FleetBreaker | None = Field(
        default=None,
        description="The fleet circuit breaker's policy (what is left out keeps its default;"
        " hysteresis must stay below share: fleet_breaker_invalid). null restores the defaults.",
    )

    @field_validator("opt_out_phrases")
    @classmethod
    def _phrases(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_phrases(value)


class Organization(BaseModel):
    id: UUID
    name: str
    admin_view_enabled: bool
    opt_out_phrases: list[str] = Field(
        default_factory=list,
        description="The phrases an opt-out reply is recognised by (the defaults unless set).",
    )
    recontact_after_days: int | None = Field(
        default=None,
        description="Campaigns skip a person another campaign messaged within this many days "
        "(null: off).",
    )
    fleet_breaker: FleetBreaker = Field(
        default_factory=FleetBreaker,
        description="The fleet circuit breaker's policy (the defaults unless set).",
    )
    sending_paused_reason: str | None = Field(
        default=None,
        description="Why the fleet circuit breaker paused the organization's sending now (most"
        " of its Telegram accounts limited, frozen or cooling down within the last hour); null"
        " when it did not. It resumes by itself (docs/accounts.md).",
    )
    role: Role = Field(description="The caller's role in it.")
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fleet_paused" in data:
            paused = data.pop("fleet_paused")
            data["sending_paused_reason"] = f"fleet breaker: {paused}" if paused else None
        if isinstance(data, dict) and "settings" in data:
            settings = data.pop("settings") or {}
            data["opt_out_phrases"] = settings.get("opt_out_phrases", DEFAULT_OPT_OUT_PHRASES)
            data["recontact_after_days"] = settings.get("recontact_after_days")
            policy = policy_of(settings)
            data["fleet_breaker"] = FleetBreaker(
                share=policy.share, min_accounts=policy.min_accounts, hysteresis=policy.hysteresis
            )
        return data


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Role = Role.MEMBER


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role


class Member(BaseModel):
    user_id: UUID
    email: str
    name: str | None
    role: Role
    created_at: datetime


class MemberList(BaseModel):
    items: list[Member]


async def _membership(connection: DbConnection, who: Principal, organization_id: UUID) -> Any:
    """The organization with the caller's role; 404 to anyone who is not a member."""
    row = await connection.fetchrow(
        ORGANIZATIONS["get_for_member"], organization_id, who.caller.user_id
    )
    if row is None:
        raise not_found("organization")
    return row


def _require_manager(role: Role) -> None:
    if not can_manage_organization(role):
        raise forbidden("only owners and admins manage the organization")


@router.post("", status_code=201, response_model=Organization, summary="Create an organization")
async def create_organization(
    body: OrganizationCreate, who: CurrentPrincipal, request: Request
) -> Organization:
    """The caller becomes its owner."""
    async with pool(request).acquire() as connection, connection.transaction():
        row = await connection.fetchrow(ORGANIZATIONS["insert"], body.name, body.admin_view_enabled)
        assert row is not None
        await connection.execute(
            ORGANIZATIONS["add_member"], row["id"], who.caller.user_id, Role.OWNER.value
        )
    return Organization.model_validate({**dict(row), "role": Role.OWNER})


@router.get("", response_model=list[Organization], summary="The caller's organizations")
async def list_organizations(who: CurrentPrincipal, request: Request) -> list[Organization]:
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(ORGANIZATIONS["list_for_user"], who.caller.user_id)
    return [Organization.model_validate(dict(row)) for row in rows]


@router.get("/{organization_id}", response_model=Organization, summary="Read an organization")
async def get_organization(
    organization_id: UUID, who: CurrentPrincipal, request: Request
) -> Organization:
    async with pool(request).acquire() as connection:
        return Organization.model_validate(
            dict(await _membership(connection, who, organization_id))
        )


@router.patch(
    "/{organization_id}",
    response_model=Organization,
    summary="Change an organization's name, admin_view_enabled, opt-out phrases,"
    " recontact_after_days or fleet breaker",
)
async def update_organization(
    organization_id: UUID, body: OrganizationPatch, who: CurrentPrincipal, request: Request
) -> Organization:
    """Owners and admins only."""
    breaker = body.fleet_breaker
    if breaker is not None:
        try:
            BreakerPolicy(breaker.share, breaker.min_accounts, breaker.hysteresis)
        except ValueError as exc:
            raise Problem(422, "fleet_breaker_invalid", "Invalid fleet breaker", str(exc)) from exc
    async with pool(request).acquire() as connection, connection.transaction():
        current = await _membership(connection, who, organization_id)
        _require_manager(Role(current["role"]))
        row = await connection.fetchrow(
            ORGANIZATIONS["update"],
            organization_id,
            body.name if body.name is not None else current["name"],
            body.admin_view_enabled
            if body.admin_view_enabled is not None
            else current["admin_view_enabled"],
            "opt_out_phrases" in body.model_fields_set,
            body.opt_out_phrases,
            "recontact_after_days" in body.model_fields_set,
            body.recontact_after_days,
            "fleet_breaker" in body.model_fields_set,
            breaker.model_dump() if breaker is not None else None,
        )
    assert row is not None
    return Organization.model_validate({**dict(row), "role": current["role"]})


@router.get("/{organization_id}/members", response_model=MemberList, summary="List members")
async def list_members(
    organization_id: UUID, who: CurrentPrincipal, request: Request
) -> MemberList:
    async with pool(request).acquire() as connection:
        await _membership(connection, who, organization_id)
        rows = await connection.fetch(ORGANIZATIONS["members"], organization_id)
    return MemberList(items=[Member.model_validate(dict(row)) for row in rows])


@router.post(
    "/{organization_id}/members", status_code=201, response_model=Member, summary="Add a member"
)
async def add_member(
    organization_id: UUID, body: MemberCreate, who: CurrentPrincipal, request: Request
) -> Member:
    """Owners and admins add people by e-mail (a user is created on first sight); only an owner
    may make someone an owner."""
    async with pool(request).acquire() as connection, connection.transaction():
        role = Role((await _membership(connection, who, organization_id))["role"])
        _require_manager(role)
        if body.role is Role.OWNER and role is not Role.OWNER:
            raise forbidden("only an owner may add another owner")
        user = await connection.fetchrow(ACCOUNTS["upsert_user"], str(body.email), None)
        assert user is not None
        added = await connection.fetchval(
            ORGANIZATIONS["add_member"], organization_id, user["id"], body.role.value
        )
        if added is None:
            raise Problem(
                409,
                "already_a_member",
                "Already a member",
                f"{body.email} is already a member of this organization",
            )
        row = await connection.fetchrow(ORGANIZATIONS["member"], organization_id, user["id"])
    return Member.model_validate(dict(row))  # type: ignore[arg-type]


async def _target(connection: DbConnection, organization_id: UUID, user_id: UUID) -> Any:
    row = await connection.fetchrow(ORGANIZATIONS["member"], organization_id, user_id)
    if row is None:
        raise not_found("member")
    return row


async def _keep_an_owner(connection: DbConnection, organization_id: UUID, user_id: UUID) -> None:
    owners = {
        r["user_id"] for r in await connection.fetch(ORGANIZATIONS["lock_owners"], organization_id)
    }
    if owners == {user_id}:
        raise Problem(
            409,
            "last_owner",
            "Last owner",
            "an organization keeps at least one owner; make someone else owner first",
        )


@router.patch(
    "/{organization_id}/members/{user_id}", response_model=Member, summary="Change a member's role"
)
async def update_member(
    organization_id: UUID,
    user_id: UUID,
    body: MemberPatch,
    who: CurrentPrincipal,
    request: Request,
) -> Member:
    """Owners and admins; only an owner may grant or take away the owner role."""
    async with pool(request).acquire() as connection, connection.transaction():
        role = Role((await _membership(connection, who, organization_id))["role"])
        _require_manager(role)
        target = await _target(connection, organization_id, user_id)
        touches_owner = Role.OWNER in (Role(target["role"]), body.role)
        if touches_owner and role is not Role.OWNER:
            raise forbidden("only an owner may grant or take away the owner role")
        if target["role"] == Role.OWNER and body.role is not Role.OWNER:
            await _keep_an_owner(connection, organization_id, user_id)
        await connection.execute(
            ORGANIZATIONS["set_role"], organization_id, user_id, body.role.value
        )
        row = await _target(connection, organization_id, user_id)
    return Member.model_validate(dict(row))


@router.delete(
    "/{organization_id}/members/{user_id}", status_code=204, summary="Remove a member, or leave"
)
async def remove_member(
    organization_id: UUID, user_id: UUID, who: CurrentPrincipal, request: Request
) -> None:
    """Owners and admins remove members (only an owner removes an owner); anyone may leave. The
    member's campaigns stay with the organization."""
    async with pool(request).acquire() as connection, connection.transaction():
        role = Role((await _membership(connection, who, organization_id))["role"])
        target = await _target(connection, organization_id, user_id)
        if user_id != who.caller.user_id:
            _require_manager(role)
            if target["role"] == Role.OWNER and role is not Role.OWNER:
                raise forbidden("only an owner may remove an owner")
        if target["role"] == Role.OWNER:
            await _keep_an_owner(connection, organization_id, user_id)
        await connection.execute(ORGANIZATIONS["remove_member"], organization_id, user_id)
