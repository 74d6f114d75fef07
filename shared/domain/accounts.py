"""Telegram account health states, and what each allows.

The sender owns the transitions (issue 4); campaign management only needs to know whether an
account in a given state may be launched with.
"""

from __future__ import annotations

from enum import StrEnum


class AccountHealth(StrEnum):
    ACTIVE = "active"
    WARMING = "warming"  # new or recovering: sends within a ramping budget
    COOLDOWN = "cooldown"  # waiting out a flood wait until cooldown_until
    LIMITED = "limited"  # spam-limited by Telegram: may not write to new peers
    DISCONNECTED = "disconnected"  # no working connection or never checked
    AUTH_LOST = "auth_lost"  # session revoked; needs a new login
    BANNED = "banned"


# "Connected and healthy" (spec 001, launch requirements). A cooldown only delays sends, so it
# does not block a launch; the executions wait for it to end.
LAUNCHABLE: frozenset[AccountHealth] = frozenset(
    {AccountHealth.ACTIVE, AccountHealth.WARMING, AccountHealth.COOLDOWN}
)


def can_launch_with(health: AccountHealth) -> bool:
    return health in LAUNCHABLE
