"""Bringing a real Telegram account in through the API (docs/accounts.md, "Logging in"): a phone
login in steps, the import of a session someone already has, and logging an account that lost
its login (auth_lost) in again in place.

The API does not talk to Telegram: each step is an account.login (or account.import_session)
command to the sender, which owns Telegram I/O and the pending logins, answered by
account.login_progressed (`commands.ask`). Secrets (the 2FA password, an imported session, an
own api_hash) go into the command sealed with DRIPLINE_SESSION_KEY, never in clear; a session
is never returned.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationError,
)

from services.api import commands
from services.api.auth import CurrentPrincipal, Principal, pool
from services.api.commands import CommandAccepted
from services.api.problems import Problem, field_error, invalid, not_found
from services.api.telegram_accounts import (
    DeviceSettings,
    ProxySettings,
    require_telethon,
    sealed_proxy,
)
from shared.crypto import SessionCipher
from shared.db.pool import DbConnection
from shared.db.sql import Queries
from shared.messaging.contracts import (
    AccountImportSession,
    AccountLogin,
    AccountLoginProgressed,
    LoginDevice,
    LoginProxy,
    MessageType,
    Payload,
)
from shared.settings import Settings

Route = TypeVar("Route", bound=Callable[..., Any])

QUERIES = Queries.load(Path(__file__).with_suffix(".sql"))

router = APIRouter(prefix="/telegram-accounts", tags=["telegram accounts"])

Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ()-]{5,32}$")]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

# The HTTP status of each refusal (the code is the problem's `code`).
STATUS = {
    "phone_number_invalid": 422,
    "phone_code_invalid": 422,
    "phone_code_expired": 410,
    "password_invalid": 422,
    "flood_wait": 429,
    "phone_number_banned": 403,
    "login_expired": 410,
    "login_refused": 422,
    "telegram_unreachable": 503,
    "proxy_unreachable": 502,
    "session_invalid": 422,
    "session_dead": 422,
    "session_conflict": 409,
    "login_not_found": 404,
    "telegram_account_not_found": 404,
    "account_not_logged_out": 409,
    "account_already_connected": 409,
    "telethon_not_configured": 503,
}
# A flood wait Telegram gave no seconds for (PHONE_NUMBER_FLOOD): try again in an hour.
DEFAULT_RETRY_AFTER_S = 3600


class LoginConnection(BaseModel):
    """How a login's steps, or an import's validation, connect to Telegram: through `proxy`, as
    `device`. The account keeps both for all its connections."""

    model_config = ConfigDict(extra="forbid")
    proxy: ProxySettings | None = Field(
        default=None,
        description="The proxy every step of the login (or the import's validation) connects "
        "through; the account keeps it for all its connections. Its password is sealed and "
        "never returned. (Not with an uploaded session file: send it base64-encoded in JSON to "
        "give a proxy.)",
    )
    device: DeviceSettings | None = Field(
        default=None,
        description="The device every step presents to Telegram (for an import, the one the "
        "session was used with elsewhere); the account keeps it for good. Omitted, a realistic "
        "desktop set is picked from the account's id.",
    )

    def login_proxy(self, settings: Settings) -> LoginProxy | None:
        """Checked as POST /telegram-accounts checks a proxy; the password sealed."""
        stored = sealed_proxy(self.proxy, settings)
        return None if stored is None else LoginProxy(**asdict(stored))

    def login_device(self) -> LoginDevice | None:
        return None if self.device is None else LoginDevice(**self.device.model_dump())


class LoginStart(LoginConnection):
    phone: Phone = Field(examples=["+15550100"], description="In international format.")
    display_name: DisplayName | None = Field(
        default=None, description="The account's name in Dripline; the phone when omitted."
    )
    api_id: int | None = Field(
        default=None, ge=1, description="Your own my.telegram.org API id (with api_hash)."
    )
    api_hash: SecretStr | None = Field(
        default=None, min_length=32, max_length=32, description="Goes with api_id; sealed."
    )


class LoginCode(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=r"^[0-9]{4,8}$", description="The code Telegram sent.")


class LoginPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: SecretStr = Field(
        min_length=1, max_length=256, description="The account's 2FA password; never stored."
    )


class SessionImport(LoginConnection):
    display_name: DisplayName
    format: Literal["telethon_string", "telethon_sqlite", "pyrogram"] = Field(
        description="`telethon_string`: a Telethon StringSession; `telethon_sqlite`: a Telethon "
        "`.session` file, base64-encoded (or upload the file itself as "
        "application/octet-stream with `?display_name=`); `pyrogram`: a Pyrogram session "
        "string."
    )
    session: SecretStr = Field(min_length=1, max_length=2_000_000)


class Login(BaseModel):
    """Where a login stands. `code_sent`: submit the code; `password_needed`: submit the 2FA
    password; `logged_in`: the account (`telegram_account_id`) has its session."""

    id: UUID
    status: Literal["code_sent", "password_needed", "logged_in"]
    telegram_account_id: UUID | None
    expires_at: datetime | None = None


def _cipher(settings: Settings) -> SessionCipher:
    require_telethon(settings)
    assert settings.session_key is not None
    return SessionCipher(settings.session_key.get_secret_value())


def refusal(answer: AccountLoginProgressed) -> Problem:
    code = answer.code or "login_refused"
    problem = Problem(STATUS.get(code, 422), code, "Login refused", answer.detail or code)
    if code == "flood_wait":
        seconds = answer.retry_after_s or DEFAULT_RETRY_AFTER_S
        problem.extra["retry_after_s"] = seconds
        problem.headers["Retry-After"] = str(seconds)
    return problem


async def _ask(
    request: Request, who: Principal, payload: Payload, login_id: UUID
) -> Login | JSONResponse:
    service = request.app.state.service

    async def visible(connection: DbConnection) -> None:
        if isinstance(payload, AccountLogin) and payload.step != "start":
            found = await connection.fetchval(QUERIES["login_of"], login_id, who.caller.user_id)
            if not found:
                raise not_found("login")

    asked = await commands.ask(
        request.app.state.replies, pool(request), service.clock, payload,
        key=login_id, actor=who.actor, outcomes=(MessageType.ACCOUNT_LOGIN_PROGRESSED,),
        wait_s=service.settings.login_wait_s, check=visible,
    )  # fmt: skip
    if asked.outcome is None:
        return commands.accepted(
            asked.command,
            "the sender has not answered yet; read the login for its state",
            f"/telegram-accounts/logins/{login_id}",
        )
    answer = asked.outcome.payload
    assert isinstance(answer, AccountLoginProgressed)
    if answer.status == "failed":
        raise refusal(answer)
    return Login(
        id=login_id,
        status=answer.status,
        telegram_account_id=answer.telegram_account_id,
        expires_at=answer.expires_at,
    )


_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
# The answers of a step beside the API's usual ones (problems.PROBLEM_STATUSES).
_ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": CommandAccepted, "description": "The sender has not answered yet"},
    410: {"description": "`phone_code_expired` or `login_expired`: start again",
          "content": _PROBLEM},
    502: {"description": "`proxy_unreachable`", "content": _PROBLEM},
    503: {"description": "`telegram_unreachable`, or `telethon_not_configured`",
          "content": _PROBLEM},
}  # fmt: skip


def _step(
    path: str, summary: str, status_code: int = 200, **extra: Any
) -> Callable[[Route], Route]:
    """The route of a login step or an import: answered with the login, or 202 while the
    sender has not answered."""
    return router.post(path, status_code=status_code, response_model=Login, responses=_ACCEPTED,
                       summary=summary, **extra)  # fmt: skip


@_step("/logins", "Start a phone login (Telegram sends a code)", 201)
async def start_login(
    body: LoginStart, who: CurrentPrincipal, request: Request
) -> Login | JSONResponse:
    """Telegram sends a login code to the phone's Telegram app (or by SMS); submit it to
    `/logins/{id}/code` before `expires_at`. Refusals: `phone_number_invalid`, `flood_wait`
    (with Retry-After), `phone_number_banned`, `telegram_unreachable`, `proxy_unreachable`."""
    settings = request.app.state.service.settings
    cipher = _cipher(settings)
    if (body.api_id is None) != (body.api_hash is None):
        raise invalid([field_error("api_hash", "api_id and api_hash go together")])
    proxy = body.login_proxy(settings)
    login_id = uuid4()
    command = AccountLogin(
        login_id=login_id,
        step="start",
        phone=body.phone,
        display_name=body.display_name,
        api_id=body.api_id,
        api_hash_sealed=None
        if body.api_hash is None
        else cipher.seal(body.api_hash.get_secret_value()),
        proxy=proxy,
        device=body.login_device(),
    )
    return await _ask(request, who, command, login_id)


@_step("/{account_id}/login", "Log an account that lost its login in again, in place", 201)
async def relogin(
    account_id: UUID, who: CurrentPrincipal, request: Request
) -> Login | JSONResponse:
    """For an `auth_lost` account: a phone login for its phone, continued like any other, through
    the account's own proxy and as its own device. On
    success the new session replaces the lost one and the account (same id, campaigns and
    history) may send again (an account.health_changed event). Refusals as for a new login, and
    `account_not_logged_out` (409) for an account that did not lose its login."""
    _cipher(request.app.state.service.settings)
    login_id = uuid4()
    command = AccountLogin(login_id=login_id, step="start", telegram_account_id=account_id)
    return await _ask(request, who, command, login_id)


@_step("/logins/{login_id}/code", "Submit the login code")
async def submit_code(
    login_id: UUID, body: LoginCode, who: CurrentPrincipal, request: Request
) -> Login | JSONResponse:
    """`logged_in`, or `password_needed` when the account has a 2FA password. Refusals:
    `phone_code_invalid` (try again), `phone_code_expired` and `login_expired` (start again),
    `flood_wait`, `phone_number_banned`, `login_not_found`."""
    _cipher(request.app.state.service.settings)
    command = AccountLogin(login_id=login_id, step="code", code=body.code)
    return await _ask(request, who, command, login_id)


@_step("/logins/{login_id}/password", "Submit the 2FA password")
async def submit_password(
    login_id: UUID, body: LoginPassword, who: CurrentPrincipal, request: Request
) -> Login | JSONResponse:
    """Checked with SRP by the sender (the password itself never reaches Telegram). Refusals:
    `password_invalid` (try again), `login_expired`, `flood_wait`, `login_not_found`."""
    cipher = _cipher(request.app.state.service.settings)
    sealed = cipher.seal(body.password.get_secret_value())
    command = AccountLogin(login_id=login_id, step="password", password_sealed=sealed)
    return await _ask(request, who, command, login_id)


@router.get(
    "/logins/{login_id}", response_model=Login, summary="Read a login",
    responses={410: _ACCEPTED[410]},
)  # fmt: skip
async def get_login(login_id: UUID, who: CurrentPrincipal, request: Request) -> Login:
    """A failed or expired login is `login_expired` (410), with the reason."""
    now = request.app.state.service.clock.now()
    async with pool(request).acquire() as connection:
        row = await connection.fetchrow(QUERIES["login"], login_id, who.caller.user_id, now)
    if row is None:
        raise not_found("login")
    expired = row["status"] in ("code_sent", "password_needed") and row["pending"] is False
    if row["status"] == "failed" or expired:
        why = row["failure_code"] or "expired"
        raise Problem(410, "login_expired", "Login ended", f"this login ended ({why})")
    return Login(
        id=login_id,
        status=row["status"],
        telegram_account_id=row["telegram_account_id"],
        # Until when the next step may come; a finished login has none (as its last step said).
        expires_at=None if row["status"] == "logged_in" else row["expires_at"],
    )


@_step(
    "/import", "Import a session someone already has", 201,
    openapi_extra={"requestBody": {"content": {
        "application/json": {"schema": SessionImport.model_json_schema()},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "required": True}},
)  # fmt: skip
async def import_session(
    who: CurrentPrincipal, request: Request, display_name: str | None = None
) -> Login | JSONResponse:
    """A Telethon StringSession, a Telethon `.session` file (base64 in JSON, or the file itself
    as application/octet-stream with `?display_name=`) or a Pyrogram session string. The sender
    connects with it and reads the account before it is saved; a dead session is refused with
    the reason (`session_dead`, `session_conflict`, `phone_number_banned`, `session_invalid`)."""
    settings = request.app.state.service.settings
    cipher = _cipher(settings)
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/octet-stream"):
        name = (display_name or "").strip()
        if not name or len(name) > 200:
            raise invalid([field_error("display_name", "give the account's name (1-200)")])
        body = SessionImport(
            display_name=name,
            format="telethon_sqlite",
            session=SecretStr(base64.b64encode(raw).decode()),
        )
    else:
        try:
            body = SessionImport.model_validate_json(raw)
        except ValidationError as exc:
            # Only the message and place: the input itself may be a session.
            raise invalid(
                [field_error(".".join(map(str, e["loc"])) or "body", e["msg"], e["type"])
                 for e in exc.errors()]
            ) from None  # fmt: skip
    login_id = uuid4()
    command = AccountImportSession(
        login_id=login_id,
        format=body.format,
        session_sealed=cipher.seal(body.session.get_secret_value()),
        display_name=body.display_name,
        proxy=body.login_proxy(settings),
        device=body.login_device(),
    )
    return await _ask(request, who, command, login_id)
