"""Telegram account health states, what each allows, and the pure rules of the health check.

The sender owns the transitions (issue 4, issue 14 item 4); campaign management only needs to
know whether an account in a given state may be launched with. What is pure lives here: reading
@SpamBot's answer, reading a freeze from help.getAppConfig, when a limited or frozen account is
asked again, how a disconnected one backs off, and what a dropped connection changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum


class AccountHealth(StrEnum):
    ACTIVE = "active"
    WARMING = "warming"  # new or recovering: sends within a ramping budget
    COOLDOWN = "cooldown"  # waiting out a flood wait until cooldown_until
    LIMITED = "limited"  # spam-limited by Telegram: may not write to new peers
    FROZEN = "frozen"  # frozen by Telegram: may not send at all until it is lifted
    DISCONNECTED = "disconnected"  # no working connection or never checked
    AUTH_LOST = "auth_lost"  # session revoked; needs a new login
    SESSION_CONFLICT = "session_conflict"  # the key is used elsewhere too (AUTH_KEY_DUPLICATED)
    BANNED = "banned"


# "Connected and healthy" (spec 001, launch requirements). A cooldown only delays sends, so it
# does not block a launch; the executions wait for it to end.
LAUNCHABLE: frozenset[AccountHealth] = frozenset(
    {AccountHealth.ACTIVE, AccountHealth.WARMING, AccountHealth.COOLDOWN}
)
# States only a person ends (a new login): the session is not used at all while in one.
NEEDS_A_PERSON: frozenset[AccountHealth] = frozenset(
    {AccountHealth.AUTH_LOST, AccountHealth.BANNED, AccountHealth.SESSION_CONFLICT}
)
# States in which the account sends (to new peers too): a drop of the connection changes them.
SENDING: frozenset[AccountHealth] = frozenset({AccountHealth.ACTIVE, AccountHealth.WARMING})


def can_launch_with(health: AccountHealth) -> bool:
    return health in LAUNCHABLE


# -- @SpamBot ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpamBotVerdict:
    """What @SpamBot said of the account: free, or limited (until a date, when it gives one)."""

    limited: bool
    until: datetime | None = None

    def limited_at(self, now: datetime) -> bool:
        """Still limited at `now`: a stated release date that has passed means free."""
        return self.limited and (self.until is None or self.until > now)


class UnreadableSpamBotAnswer(ValueError):
    """An answer that says neither free nor limited: never guessed either way."""


_FREE = re.compile(r"no limits are currently applied|free as a bird", re.IGNORECASE)
_LIMITED = re.compile(
    r"account (is|was|has been) (now )?limited|while the account is limited|"
    r"you will not be able to send messages|anti-spam systems",
    re.IGNORECASE,
)
_RELEASE = re.compile(
    r"(?:released|limited until|lifted)\s+(?:on\s+)?"
    r"(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3,9})\.?\s+(?P<year>\d{4}),?\s+"
    r"(?:at\s+)?(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?:UTC)?",
    re.IGNORECASE,
)
_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
)}  # fmt: skip


def read_spambot(text: str) -> SpamBotVerdict:
    """@SpamBot's answer to /start: free, limited until a date (UTC), or limited with no date.
    Raises UnreadableSpamBotAnswer for anything else (a new wording must be taught, not
    guessed: guessing "free" sends a limited account back to cold messaging)."""
    if _FREE.search(text):
        return SpamBotVerdict(limited=False)
    if not _LIMITED.search(text):
        raise UnreadableSpamBotAnswer(f"@SpamBot's answer is not understood: {text[:200]!r}")
    release = _RELEASE.search(text)
    if release is None:
        return SpamBotVerdict(limited=True)
    month = _MONTHS.get(release["month"][:3].lower())
    if month is None:
        raise UnreadableSpamBotAnswer(f"@SpamBot's release date is not understood: {text[:200]!r}")
    until = datetime(
        int(release["year"]), month, int(release["day"]),
        int(release["hour"]), int(release["minute"]), tzinfo=UTC,
    )  # fmt: skip
    return SpamBotVerdict(limited=True, until=until)


# -- freezes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freeze:
    """help.getAppConfig's freeze of the account (Telegram, since 2025)."""

    since: datetime | None
    until: datetime | None
    appeal_url: str | None

    def frozen_at(self, now: datetime) -> bool:
        return self.until is None or self.until > now


def read_freeze(config: Mapping[str, object]) -> Freeze | None:
    """The freeze in help.getAppConfig's values (freeze_since_date, freeze_until_date: Unix
    seconds; freeze_appeal_url), or None when the account is not frozen."""
    since = config.get("freeze_since_date")
    until = config.get("freeze_until_date")
    url = config.get("freeze_appeal_url")
    if since is None and until is None:
        return None
    return Freeze(_moment(since), _moment(until), url if isinstance(url, str) and url else None)


def _moment(value: object) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


# -- when to check again ----------------------------------------------------------------------

RECHECK_FIRST = timedelta(hours=1)
RECHECK_CAP = timedelta(hours=24)
RECONNECT_FIRST_S = 5.0
RECONNECT_CAP_S = 900.0


def recheck_delay(checks: int) -> timedelta:
    """How long after its `checks`-th check in a row (0: it just became so) a limited or frozen
    account is asked again: 1 h, 2 h, 4 h… capped at 24 h. Asking @SpamBot every few minutes
    is itself a pattern Telegram sees; a limit rarely ends within the hour."""
    delay: timedelta = RECHECK_FIRST * 2 ** min(checks, 16)
    return min(delay, RECHECK_CAP)


def recheck_at(checks: int, now: datetime, until: datetime | None) -> datetime:
    """The next check of a limited or frozen account: on the backoff, or when the stated date
    passes if that is sooner (so the account is lifted then, not up to a day later)."""
    moment = now + recheck_delay(checks)
    if until is not None and now < until < moment:
        return until
    return moment


def reconnect_delay(failures: int, rand: float) -> timedelta:
    """How long a disconnected account waits before its `failures`+1-th reconnect: 5 s, 10 s,
    20 s… capped at 15 min, each scaled by a jitter in [0.5, 1) from `rand` in [0, 1), so many
    accounts cut off at once do not all come back in the same second."""
    base = min(RECONNECT_FIRST_S * 2 ** min(failures, 16), RECONNECT_CAP_S)
    return timedelta(seconds=base * (0.5 + min(max(rand, 0.0), 1.0) / 2))


def after_drop(health: AccountHealth) -> AccountHealth | None:
    """What a dropped connection (one Telethon could not restore) makes of the account's state:
    a sending account is disconnected; a limited, frozen or cooling one keeps its state (losing
    it would let the next good connection lift it without asking), and its next check
    reconnects; a dead one stays dead."""
    return AccountHealth.DISCONNECTED if health in SENDING else None
