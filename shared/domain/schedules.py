"""When scheduled and recurring campaigns run: cron rules evaluated in the campaign's time zone.

cronsim (the cron evaluator of healthchecks.io) does the cron arithmetic, including daylight
saving changes, on time-zone-aware datetimes; this module pins the rules we add: five fields
only, times in and out as UTC instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from shared.domain.campaigns import LaunchType


def recurrence_problem(rule: str) -> str | None:
    """Why a cron rule is not acceptable; None when it is."""
    if len(rule.split()) != 5:
        return "recurrence must be a five-field cron rule, e.g. '0 9 * * 1-5'"
    try:
        CronSim(rule, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return f"invalid cron rule: {exc}"
    return None


def occurrences(rule: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Occurrences strictly after `after`, as UTC instants."""
    local = after.astimezone(ZoneInfo(timezone))
    for moment in CronSim(rule, local):
        yield moment.astimezone(UTC)


def next_run(
    launch_type: LaunchType,
    *,
    scheduled_at: datetime | None,
    recurrence: str | None,
    timezone: str,
    now: datetime,
) -> datetime | None:
    """The next launch of a scheduled campaign: its time, or the rule's next occurrence."""
    if launch_type is LaunchType.SCHEDULE:
        return scheduled_at
    if launch_type is LaunchType.RECURRING and recurrence:
        return next(occurrences(recurrence, timezone, now), None)
    return None


def occurrences_between(
    rule: str, timezone: str, start: datetime, end: datetime, limit: int
) -> list[datetime]:
    """Occurrences in [start, end), at most `limit` of them."""
    found: list[datetime] = []
    for moment in occurrences(rule, timezone, start - _EPSILON):
        if moment >= end or len(found) >= limit:
            break
        found.append(moment)
    return found


_EPSILON = datetime.resolution
