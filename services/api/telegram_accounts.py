"""/telegram-accounts: the accounts campaigns send from.

Health (the state, last check, cooldown) belongs to the sender, which checks accounts; here an
account is registered and described. A simulated account starts active, since the simulator is
always reachable; a real one starts disconnected until its first health check.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints
from telethon.sessions import StringSession

from services.api import commands
from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.commands import CommandAccepted
from services.api.deps import CurrentClock, CurrentSettings, Database, Replies
from services.api.problems import Problem, field_error, forbidden, invalid, not_found
from shared.crypto import SessionCipher
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.domain.accounts import AccountHealth
from shared.domain.permissions import can_manage_organization
from shared.messaging.contracts import AccountHealthCheck, MessageType
from shared.settings import Settings

TELEGRAM_ACCOUNTS = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/telegram-accounts", tags=["telegram accounts"])

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PacingSettings(BaseModel):
    """Per-account pacing; omitted values take the conservative defaults (docs/engine.md)."""

    model_config = ConfigDict(extra="forbid")
    min_gap_s: float | None = Field(default=None, ge=0, le=86400)
    jitter_s: float | None = Field(default=None, ge=0, le=3600)
    daily_new_peers: int | None = Field(default=None, ge=0, le=1000)
    flood_margin_s: float | None = Field(default=None, ge=0, le=3600)
    limited_retry_s: float | None = Field(default=None, ge=1, le=7 * 86400)
    warmup_start: int | None = Field(default=None, ge=0, le=1000)
    warmup_step: int | None = Field(default=None, ge=0, le=1000)
    flood_cut: float | None = Field(default=None, ge=0, le=1)

    def stored(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: DisplayName
    phone: str | None = Field(default=None, max_length=32)
    session_kind: Literal["simulated", "telethon"] = "simulated"
    daily_quota: int = Field(
        default=20, ge=0, le=1000, description="New peers a day (the sender may ramp below it)."
    )
    pacing: PacingSettings = Field(default_factory=PacingSettings)
    simulation: dict[str, Any] = Field(
        default_factory=dict,
        description="How the simulated Telegram behaves for this account (docs/engine.md).",
    )
    session_string: SecretStr | None = Field(
        default=None,
        description="A Telethon StringSession of a logged-in account (telethon accounts only). "
        "Stored encrypted, never returned or logged.",
    )
    warm: bool = Field(
        default=False,
        description="An aged account that needs no warm-up; a new one starts warming, its "
        "daily budget of new peers ramping up.",
    )


class AccountPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: DisplayName | None = None
    daily_quota: int | None = Field(default=None, ge=0, le=1000)
    pacing: PacingSettings | None = None
    simulation: dict[str, Any] | None = None


class TelegramAccount(BaseModel):
    id: UUID
    organization_id: UUID | None
    owner_user_id: UUID
    display_name: str
    phone: str | None
    session_kind: str
    health_status: AccountHealth
    health_detail: str | None
    last_checked_at: datetime | None
    cooldown_until: datetime | None
    daily_quota: int
    sent_today: int
    pacing: dict[str, Any]
    simulation: dict[str, Any]
    last_send_at: datetime | None
    created_at: datetime
    updated_at: datetime


async def _get(connection: DbConnection, who: Principal, account_id: UUID) -> Any:
    row = await connection.fetchrow(
        TELEGRAM_ACCOUNTS["get"], account_id, who.caller.organization_id, who.caller.user_id
    )
    if row is None:
        raise not_found("telegram_account")
    return row


def _may_manage(who: Principal, row: Any) -> None:
    if row["owner_user_id"] != who.caller.user_id and not can_manage_organization(who.caller.role):
        raise forbidden(
            "only the account's owner, or an organization owner or admin, may change it"
        )


def _sealed_session(body: AccountCreate, settings: Settings) -> str | None:
    """The session string, checked and encrypted; None for a simulated account."""
    if body.session_kind == "simulated":
        if body.session_string is not None:
            raise invalid([field_error("session_string", "only telethon accounts have a session")])
        return None
    if (why := settings.telethon_ready) is not None:
        raise Problem(
            503,
            "telethon_not_configured",
            "Telethon accounts are not available",
            f"This deployment cannot run Telethon accounts: {why}",
        )
    if body.session_string is None:
        raise invalid([field_error("session_string", "a telethon account needs its StringSession")])
    session = body.session_string.get_secret_value()
    try:
        StringSession(session)
    except ValueError:
        raise invalid(
            [field_error("session_string", "not a Telethon StringSession")]
        ) from None  # the exception text would quote the secret
    assert settings.session_key is not None
    return SessionCipher(settings.session_key.get_secret_value()).seal(session)


@router.post("", status_code=201, response_model=TelegramAccount, summary="Register an account")
async def create_account(
    body: AccountCreate, who: CurrentPrincipal, request: Request
) -> TelegramAccount:
    sealed = _sealed_session(body, request.app.state.service.settings)
    if body.session_kind == "telethon":
        # Not known to work until the sender has opened the session.
        health, detail = AccountHealth.DISCONNECTED, "waiting for the first health check"
    else:
        health = AccountHealth.ACTIVE if body.warm else AccountHealth.WARMING
        detail = None
    async with pool(request).acquire() as connection:
        row = await connection.fetchrow(
            TELEGRAM_ACCOUNTS["insert"],
            who.caller.organization_id,
            who.caller.user_id,
            body.display_name,
            body.phone,
            body.session_kind,
            health.value,
            body.daily_quota,
            body.pacing.stored(),
            body.simulation,
            sealed,
            not body.warm,
            detail,
        )
    return TelegramAccount.model_validate(dict(row))  # type: ignore[arg-type]


@router.get("", response_model=list[TelegramAccount], summary="List accounts")
async def list_accounts(who: CurrentPrincipal, request: Request) -> list[TelegramAccount]:
    async with pool(request).acquire() as connection:
        rows = await connection.fetch(
            TELEGRAM_ACCOUNTS["list"], who.caller.organization_id, who.caller.user_id
        )
    return [TelegramAccount.model_validate(dict(row)) for row in rows]


@router.get("/{account_id}", response_model=TelegramAccount, summary="Read an account")
async def get_account(account_id: UUID, who: CurrentPrincipal, request: Request) -> TelegramAccount:
    async with pool(request).acquire() as connection:
        return TelegramAccount.model_validate(dict(await _get(connection, who, account_id)))


@router.patch("/{account_id}", response_model=TelegramAccount, summary="Edit an account")
async def update_account(
    account_id: UUID, body: AccountPatch, who: CurrentPrincipal, request: Request
) -> TelegramAccount:
    async with pool(request).acquire() as connection, connection.transaction():
        row = await _get(connection, who, account_id)
        _may_manage(who, row)
        updated = await connection.fetchrow(
            TELEGRAM_ACCOUNTS["update"],
            account_id,
            body.display_name if body.display_name is not None else row["display_name"],
            body.daily_quota if body.daily_quota is not None else row["daily_quota"],
            body.pacing.stored() if body.pacing is not None else row["pacing"],
            body.simulation if body.simulation is not None else row["simulation"],
        )
    return TelegramAccount.model_validate(dict(updated))  # type: ignore[arg-type]


@router.delete("/{account_id}", status_code=204, summary="Remove an account (soft)")
async def delete_account(account_id: UUID, who: CurrentPrincipal, request: Request) -> None:
    """Nothing more is sent from it: its campaigns' unfinished executions wait (reason
    `account_deleted`), and those campaigns can no longer launch until they get another
    account."""
    async with pool(request).acquire() as connection, connection.transaction():
        _may_manage(who, await _get(connection, who, account_id))
        # Executions first: the order a step takes (its executions, then the account row).
        await connection.execute(TELEGRAM_ACCOUNTS["hold_executions"], account_id)
        await connection.execute(TELEGRAM_ACCOUNTS["soft_delete"], account_id)


@router.post(
    "/{account_id}/health-check",
    response_model=TelegramAccount,
    responses={202: {"model": CommandAccepted,
                     "description": "The check was requested and has not finished yet"}},
    summary="Check an account's health now",
)  # fmt: skip
async def check_account(
    account_id: UUID,
    who: CurrentPrincipal,
    database: Database,
    clock: CurrentClock,
    settings: CurrentSettings,
    replies: Replies,
) -> TelegramAccount | JSONResponse:
    """The sender probes the account and records what it finds (an account.check_health
    command answered by account.checked); the answer is the account after the check. A banned
    account, or one that lost its login, is not probed: a person must act."""

    async def visible(connection: DbConnection) -> None:
        await _get(connection, who, account_id)

    asked = await commands.ask(
        replies, database, clock, AccountHealthCheck(telegram_account_id=account_id),
        key=account_id, actor=who.actor, outcomes=(MessageType.ACCOUNT_CHECKED,),
        wait_s=settings.command_wait_s, check=visible,
    )  # fmt: skip
    if asked.outcome is None:
        return commands.accepted(
            asked.command, "the health check will run shortly", f"/telegram-accounts/{account_id}"
        )
    async with database.acquire() as connection:
        return TelegramAccount.model_validate(dict(await _get(connection, who, account_id)))
