"""The fleet circuit breaker (issue 14, item 4): when most of an organization's sending accounts
are in trouble with Telegram, the organization's sending pauses by itself. Pure.

An account is **in trouble** when it is limited, frozen or cooling down from a flood wait now,
or was one of those within the last hour (`WINDOW`): an account that just came out of a
cooldown is still a sign that Telegram is pushing back on the fleet. The accounts that count
(**sending accounts**) are those that could send: not deleted, and not dead (auth_lost,
session_conflict, banned: those send nothing anyway and would only dilute the share).

The breaker **trips** when the share of sending accounts in trouble reaches `share` (default
0.6) and there are at least `min_accounts` of them (one limited account alone is not a fleet
problem: its own state already stops what it may not send). It **resets** when the share falls
below `share - hysteresis` (default 0.1), so that one account going back and forth across the
line does not pause and resume the organization every minute.

An organization sets its own policy in its settings (`fleet_breaker`: share, min_accounts,
hysteresis; `policy_of`); personal mode uses the defaults. While paused, a due send is put off by
`PAUSED_RECHECK` and looked at again then (docs/accounts.md, "The fleet circuit breaker").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.domain.accounts import AccountHealth

WINDOW = timedelta(hours=1)
DEFAULT_SHARE = 0.6
DEFAULT_MIN_ACCOUNTS = 2
DEFAULT_HYSTERESIS = 0.1
# While a context's sending is paused, a due send is put off this long, then looked at again.
PAUSED_RECHECK = timedelta(seconds=30)

TROUBLE: frozenset[AccountHealth] = frozenset(
    {AccountHealth.LIMITED, AccountHealth.FROZEN, AccountHealth.COOLDOWN}
)
DEAD: frozenset[AccountHealth] = frozenset(
    {AccountHealth.AUTH_LOST, AccountHealth.SESSION_CONFLICT, AccountHealth.BANNED}
)


@dataclass(frozen=True)
class FleetAccount:
    """What the breaker needs of one account: its state now, and the last moment it was seen in
    one of the trouble states (limited, frozen, cooldown: entering or leaving it), if ever."""

    health: AccountHealth
    troubled_at: datetime | None = None


@dataclass(frozen=True)
class BreakerPolicy:
    share: float = DEFAULT_SHARE
    min_accounts: int = DEFAULT_MIN_ACCOUNTS
    hysteresis: float = DEFAULT_HYSTERESIS
    window: timedelta = WINDOW

    def __post_init__(self) -> None:
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], not {self.share}")
        if self.min_accounts < 1:
            raise ValueError(f"min_accounts must be at least 1, not {self.min_accounts}")
        if not 0 <= self.hysteresis < self.share:
            raise ValueError(f"hysteresis must be in [0, share), not {self.hysteresis}")


@dataclass(frozen=True)
class BreakerDecision:
    paused: bool
    troubled: int  # sending accounts in trouble
    sending: int  # sending accounts
    reason: str | None  # why sending is paused (None when it is not)


def policy_of(settings: Mapping[str, Any] | None) -> BreakerPolicy:
    """An organization's policy from its settings' `fleet_breaker` object (what it does not set
    keeps the default; settings the API validated, so a bad value is a bug and raises)."""
    chosen = (settings or {}).get("fleet_breaker")
    if not isinstance(chosen, Mapping):
        return BreakerPolicy()
    return BreakerPolicy(
        share=float(chosen.get("share", DEFAULT_SHARE)),
        min_accounts=int(chosen.get("min_accounts", DEFAULT_MIN_ACCOUNTS)),
        hysteresis=float(chosen.get("hysteresis", DEFAULT_HYSTERESIS)),
    )


def in_trouble(account: FleetAccount, now: datetime, window: timedelta = WINDOW) -> bool:
    if account.health in TROUBLE:
        return True
    return account.troubled_at is not None and now - account.troubled_at < window


def decide(
    accounts: Sequence[FleetAccount],
    now: datetime,
    *,
    paused: bool,
    policy: BreakerPolicy = BreakerPolicy(),
) -> BreakerDecision:
    """Whether the organization's sending is paused, given its accounts and whether it was
    paused before (the reset line is lower than the trip line)."""
    sending = [a for a in accounts if a.health not in DEAD]
    troubled = sum(1 for a in sending if in_trouble(a, now, policy.window))
    total = len(sending)
    fraction = troubled / total if total else 0.0
    if total < policy.min_accounts or troubled < policy.min_accounts:
        stop = False
    elif paused:
        stop = fraction >= policy.share - policy.hysteresis
    else:
        stop = fraction >= policy.share
    reason = (
        f"{troubled} of {total} sending accounts are limited, frozen or in a flood cooldown "
        f"within the last hour (pausing at {policy.share:.0%})"
        if stop
        else None
    )
    return BreakerDecision(stop, troubled, total, reason)
