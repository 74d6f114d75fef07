"""Telethon's exceptions, sorted into the gateway's five categories (TELEGRAM.md, "Errors").

Order matters: FrozenMethodInvalidError is a FloodError without `.seconds`, and PeerFloodError
is a BadRequestError, not a FloodError.
"""

from __future__ import annotations

from telethon import errors
from telethon.errors.common import AuthKeyNotFound

from services.sender.gateway import (
    AccountDead,
    AccountFrozen,
    AccountLimited,
    ContactPermanent,
    GatewayError,
    RetryAfter,
    Transient,
)


class StalePeer(ContactPermanent):
    """Usually a stale access hash: resolve the peer again once, then give up."""


_CONTACT = (
    errors.UserPrivacyRestrictedError,
    errors.InputUserDeactivatedError,
    errors.UsernameNotOccupiedError,
    errors.UsernameInvalidError,
    errors.UserIsBlockedError,
)
_STALE = (errors.UserIdInvalidError, errors.PeerIdInvalidError)
_LIMITED = (errors.PeerFloodError, errors.UserRestrictedError)
_AUTH_LOST = (
    errors.AuthKeyUnregisteredError,
    errors.SessionRevokedError,
    errors.SessionExpiredError,
    errors.AuthKeyInvalidError,
    AuthKeyNotFound,
)
_BANNED = (
    errors.UserDeactivatedError,
    errors.UserDeactivatedBanError,
    errors.PhoneNumberBannedError,
)
_TRANSIENT = (errors.ServerError, errors.RpcCallFailError, errors.TimedOutError, OSError)
# Errors with no class in Telethon 1.45: they arrive as the base class for their code.
_CONTACT_MESSAGES = ("PRIVACY_PREMIUM_REQUIRED", "ALLOW_PAYMENT_REQUIRED")


def categorize(exc: BaseException) -> GatewayError:
    name = type(exc).__name__
    if isinstance(exc, errors.FrozenMethodInvalidError):
        # No dates here: the health check reads them (and the appeal link) from help.getAppConfig.
        return AccountFrozen(f"{name}: the account is frozen")
    if isinstance(
        exc, (errors.FloodWaitError, errors.FloodPremiumWaitError, errors.SlowModeWaitError)
    ):
        return RetryAfter(float(exc.seconds), name)
    if isinstance(exc, _LIMITED):
        return AccountLimited(f"{name}: the account may not message strangers for now")
    if isinstance(exc, errors.AuthKeyDuplicatedError):
        # The key is in use from two places: Telegram may end the session, and every further
        # use from here makes it likelier. Nothing uses it until a person logs in again.
        return AccountDead(
            f"{name}: the session is used from another place too; log in again",
            "session_conflict",
        )
    if isinstance(exc, _AUTH_LOST):
        return AccountDead(f"{name}: the session is gone; log in again", "auth_lost")
    if isinstance(exc, _BANNED):
        return AccountDead(f"{name}: the account is banned or deleted", "banned")
    if isinstance(exc, _STALE):
        return StalePeer(f"{name}: the peer could not be found")
    if isinstance(exc, _CONTACT):
        return ContactPermanent(f"{name}: this contact cannot be messaged")
    if isinstance(exc, errors.RPCError) and str(exc.message).startswith(_CONTACT_MESSAGES):
        return ContactPermanent(f"{exc.message}: this contact cannot be messaged")
    if isinstance(exc, _TRANSIENT):
        return Transient(f"{name}: {exc}")
    if isinstance(exc, errors.FloodError):
        return AccountLimited(f"{name}: a flood error without a wait time")
    return Transient(f"{name}: {exc}")
