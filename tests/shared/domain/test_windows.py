"""Sending windows: days, times of day, windows across midnight, and clock changes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from shared.domain.windows import ALL_DAYS, Window, next_allowed, window_of

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = frozenset({1, 2, 3, 4, 5})
OFFICE = Window("Europe/Berlin", WEEKDAYS, time(9), time(17))
NIGHT = Window("Europe/Berlin", frozenset({5}), time(22), time(2))  # Friday night


def berlin(*parts: int) -> datetime:
    year, month, day, hour, minute = parts
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


CASES = [
    # window, moment -> the next allowed moment (2026-03-02 is a Monday)
    (OFFICE, berlin(2026, 3, 2, 10, 0), berlin(2026, 3, 2, 10, 0)),  # inside
    (OFFICE, berlin(2026, 3, 2, 8, 0), berlin(2026, 3, 2, 9, 0)),  # before opening
    (OFFICE, berlin(2026, 3, 2, 17, 0), berlin(2026, 3, 3, 9, 0)),  # the end is exclusive
    (OFFICE, berlin(2026, 3, 6, 18, 0), berlin(2026, 3, 9, 9, 0)),  # Friday evening: Monday
    (OFFICE, berlin(2026, 3, 7, 12, 0), berlin(2026, 3, 9, 9, 0)),  # Saturday
    (NIGHT, berlin(2026, 3, 6, 23, 0), berlin(2026, 3, 6, 23, 0)),  # Friday night
    (NIGHT, berlin(2026, 3, 7, 1, 30), berlin(2026, 3, 7, 1, 30)),  # ... into Saturday
    (NIGHT, berlin(2026, 3, 7, 2, 0), berlin(2026, 3, 13, 22, 0)),  # closed: next Friday
    (NIGHT, berlin(2026, 3, 6, 1, 0), berlin(2026, 3, 6, 22, 0)),  # Friday 01:00 is Thursday's
    (Window("UTC"), datetime(2026, 3, 7, 3, tzinfo=UTC), datetime(2026, 3, 7, 3, tzinfo=UTC)),
    (
        Window("UTC", frozenset({1})),
        datetime(2026, 3, 7, 3, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    ),
    # Clocks go forward on 2026-03-29 in Berlin: 02:00-03:00 does not exist.
    (
        Window("Europe/Berlin", frozenset({7}), time(2, 30), time(4)),
        berlin(2026, 3, 29, 1, 0),
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    ),  # opens at 03:00 CEST
    (OFFICE, berlin(2026, 3, 27, 18, 0), datetime(2026, 3, 30, 7, 0, tzinfo=UTC)),  # now CEST
    # Clocks go back on 2026-10-25: 02:30 happens twice; the window opens at the first.
    (
        Window("Europe/Berlin", frozenset({7}), time(2, 30), time(5)),
        berlin(2026, 10, 25, 0, 0),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    ),
    (
        Window("America/New_York", WEEKDAYS, time(9), time(17)),
        datetime(2026, 11, 2, 13, 59, tzinfo=UTC),
        datetime(2026, 11, 2, 14, 0, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("window", "moment", "expected"), CASES)
def test_next_allowed(window: Window, moment: datetime, expected: datetime) -> None:
    assert next_allowed(window, moment) == expected


@pytest.mark.parametrize(
    ("days", "start", "end"),
    [
        (frozenset(), None, None),
        (frozenset({8}), None, None),
        (WEEKDAYS, time(9), None),
        (WEEKDAYS, time(9), time(9)),
    ],
)
def test_bad_windows_are_refused(
    days: frozenset[int], start: time | None, end: time | None
) -> None:
    with pytest.raises(ValueError, match=r"days|start"):
        Window("UTC", days, start, end)


@pytest.mark.parametrize(
    ("days", "expected"),
    [(None, ALL_DAYS), ([], ALL_DAYS), ([6, 7], frozenset({6, 7})), (range(1, 3), {1, 2})],
)
def test_window_of_reads_no_days_as_every_day(
    days: Iterable[int] | None, expected: frozenset[int]
) -> None:
    window = window_of("Europe/Kyiv", days, time(9), time(17))
    assert window == Window("Europe/Kyiv", frozenset(expected), time(9), time(17))
