"""Telethon's own exception classes map onto the gateway's categories as TELEGRAM.md lists."""

from __future__ import annotations

import pytest
from telethon import errors
from telethon.errors.common import AuthKeyNotFound
from telethon.errors.rpcbaseerrors import BadRequestError, ForbiddenError

from services.sender.gateway import (
    AccountDead,
    AccountFrozen,
    AccountLimited,
    ContactPermanent,
    RetryAfter,
    Transient,
)
from services.sender.telethon_errors import StalePeer, categorize

CASES = [
    (errors.FloodWaitError(None, capture=42), RetryAfter),
    (errors.FloodPremiumWaitError(None, capture=7), RetryAfter),
    (errors.SlowModeWaitError(None, capture=30), RetryAfter),
    (errors.ServerError(None, "INTERNAL", 500), Transient),
    (errors.RpcCallFailError(None), Transient),
    (errors.TimedOutError(None, "Timeout", -503), Transient),
    (ConnectionError("reset by peer"), Transient),
    (OSError("network is unreachable"), Transient),
    (errors.UserPrivacyRestrictedError(None), ContactPermanent),
    (errors.InputUserDeactivatedError(None), ContactPermanent),
    (errors.UsernameNotOccupiedError(None), ContactPermanent),
    (errors.UsernameInvalidError(None), ContactPermanent),
    (errors.UserIsBlockedError(None), ContactPermanent),
    (errors.UserIdInvalidError(None), StalePeer),
    (errors.PeerIdInvalidError(None), StalePeer),
    (ForbiddenError(None, "PRIVACY_PREMIUM_REQUIRED", 403), ContactPermanent),
    (BadRequestError(None, "ALLOW_PAYMENT_REQUIRED_100", 400), ContactPermanent),
    (errors.PeerFloodError(None), AccountLimited),
    (errors.UserRestrictedError(None), AccountLimited),
    (errors.FrozenMethodInvalidError(None), AccountFrozen),
    (errors.AuthKeyUnregisteredError(None), AccountDead),
    (errors.SessionRevokedError(None), AccountDead),
    (errors.SessionExpiredError(None), AccountDead),
    (errors.AuthKeyInvalidError(None), AccountDead),
    (errors.AuthKeyDuplicatedError(None), AccountDead),
    (AuthKeyNotFound(), AccountDead),
    (errors.UserDeactivatedError(None), AccountDead),
    (errors.UserDeactivatedBanError(None), AccountDead),
    (errors.PhoneNumberBannedError(None), AccountDead),
]


@pytest.mark.parametrize(("exc", "category"), CASES, ids=lambda v: type(v).__name__)
def test_mapping(exc: BaseException, category: type) -> None:
    assert type(categorize(exc)) is category


def test_flood_waits_carry_their_seconds() -> None:
    mapped = categorize(errors.FloodWaitError(None, capture=42))
    assert isinstance(mapped, RetryAfter)
    assert mapped.seconds == 42


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (errors.SessionRevokedError(None), "auth_lost"),
        (AuthKeyNotFound(), "auth_lost"),
        (errors.UserDeactivatedBanError(None), "banned"),
        (errors.AuthKeyDuplicatedError(None), "session_conflict"),
    ],
)
def test_dead_accounts_say_why(exc: BaseException, kind: str) -> None:
    mapped = categorize(exc)
    assert isinstance(mapped, AccountDead)
    assert mapped.kind == kind


def test_a_frozen_account_never_reads_seconds() -> None:
    # FrozenMethodInvalidError is a FloodError without .seconds; reading it would raise.
    frozen = errors.FrozenMethodInvalidError(None)
    assert not hasattr(frozen, "seconds")
    assert "frozen" in categorize(frozen).reason
