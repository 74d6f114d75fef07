"""Allowed sending windows: days of the week and a time of day, in a time zone.

`next_allowed` answers "may I act at this moment, and if not, when next?". A window whose end
is earlier than its start crosses midnight and belongs to the day it opens (22:00-02:00 on a
Friday runs into Saturday morning). Local times that do not exist (the hour skipped when clocks
go forward) open at the first real moment after; ambiguous ones (the hour repeated when they go
back) open at their first occurrence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ALL_DAYS = frozenset(range(1, 8))  # ISO weekdays, Monday = 1


@dataclass(frozen=True)
class Window:
    timezone: str
    days: frozenset[int] = ALL_DAYS
    start: time | None = None  # None with end None: the whole day
    end: time | None = None

    def __post_init__(self) -> None:
        if not self.days or not self.days <= ALL_DAYS:
            raise ValueError("days must be ISO weekdays 1-7, at least one")
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end, or neither")
        if self.start is not None and self.start == self.end:
            raise ValueError("start and end must differ")


def window_of(
    timezone: str, days: Iterable[int] | None, start: time | None, end: time | None
) -> Window:
    """A window as stored or given: no days (NULL, or an empty list) means every day."""
    return Window(timezone, frozenset(days or ALL_DAYS), start, end)


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The instant a wall-clock time happens on a day; a skipped time maps to the end of the
    gap (the first real moment after it)."""
    wall = datetime.combine(day, at)
    early = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) == wall:
        return early  # it exists (fold=0 is the first of two, if it happens twice)
    # Skipped: fold=1 reads it with the offset after the change, fold=0 with the one before,
    # and the clock change lies between the two readings. Find it, to the second.
    low_instant, high_instant = sorted((wall.replace(tzinfo=zone, fold=1).astimezone(UTC), early))
    low, high = int(low_instant.timestamp()), int(high_instant.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def wall_clock_instant(wall: datetime, timezone: str) -> datetime:
    """The instant a naive local wall-clock time happens in a time zone (a skipped time maps
    to the first real moment after it; a repeated one to its first occurrence)."""
    return _instant(wall.date(), wall.time(), ZoneInfo(timezone))


def _span(window: Window, day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The window opening on `day`, as UTC instants."""
    if window.start is None or window.end is None:
        return (_instant(day, time(0), zone), _instant(day + timedelta(days=1), time(0), zone))
    close_day = day if window.end > window.start else day + timedelta(days=1)
    return _instant(day, window.start, zone), _instant(close_day, window.end, zone)


def next_allowed(window: Window, moment: datetime) -> datetime:
    """`moment` if it falls in the window, otherwise the window's next opening."""
    zone = ZoneInfo(window.timezone)
    today = moment.astimezone(zone).date()
    for offset in range(-1, 9):
        day = today + timedelta(days=offset)
        if day.isoweekday() not in window.days:
            continue
        opens, closes = _span(window, day, zone)
        if moment < closes:
            return max(moment, opens)
    raise AssertionError("a valid window opens within eight days")  # pragma: no cover
