"""Drip arithmetic (specs 002/003), one row per case: intervals, allowed days, windows that
cross midnight, and daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.domain.bulk_actions import Mode
from shared.domain.drip import Plan, first_batch_at, next_batch_at
from shared.domain.windows import Window

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = frozenset({1, 2, 3, 4, 5})
H = timedelta(hours=1)


def local(text: str) -> datetime:
    """A Berlin wall-clock time as an aware instant."""
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def drip(every: timedelta, days: frozenset[int] = frozenset(range(1, 8)),
         start: time | None = None, end: time | None = None) -> Plan:  # fmt: skip
    return Plan(Mode.DRIP, batch_size=100, every=every,
                window=Window("Europe/Berlin", days, start, end))  # fmt: skip


NEXT_CASES = [
    # (plan, due, released at, expected), Berlin wall-clock times; 2026-11-20 is a Friday
    ("every 5 hours, no window", drip(5 * H), "2026-11-18 08:00", "2026-11-18 08:00",
     "2026-11-18 13:00"),
    ("released late: counted from when it was due", drip(5 * H), "2026-11-18 08:00",
     "2026-11-18 08:20", "2026-11-18 13:00"),
    ("into the evening: the next window opening", drip(5 * H, start=time(9), end=time(17)),
     "2026-11-18 14:00", "2026-11-18 14:00", "2026-11-19 09:00"),
    ("Friday afternoon, weekdays only: Monday", drip(5 * H, WEEKDAYS, time(9), time(17)),
     "2026-11-20 15:00", "2026-11-20 15:00", "2026-11-23 09:00"),
    ("every 2 days, weekdays only", drip(timedelta(days=2), WEEKDAYS), "2026-11-19 10:00",
     "2026-11-19 10:00", "2026-11-23 00:00"),
    ("inside a window that crosses midnight", drip(H, start=time(22), end=time(2)),
     "2026-11-18 23:30", "2026-11-18 23:30", "2026-11-19 00:30"),
    ("after a window that crosses midnight", drip(H, start=time(22), end=time(2)),
     "2026-11-19 01:30", "2026-11-19 01:30", "2026-11-19 22:00"),
    ("the night window of an allowed Friday runs into Saturday",
     drip(H, frozenset({5}), time(22), time(2)), "2026-11-20 23:30", "2026-11-20 23:30",
     "2026-11-21 00:30"),
    ("but Saturday's own window is not allowed", drip(H, frozenset({5}), time(22), time(2)),
     "2026-11-21 01:30", "2026-11-21 01:30", "2026-11-27 22:00"),
    ("a scheduler away for days: no burst", drip(5 * H), "2026-11-18 08:00",
     "2026-11-21 10:00", "2026-11-21 15:00"),
    ("spring forward: every day keeps 09:00", drip(timedelta(days=1)), "2026-03-28 09:00",
     "2026-03-28 09:00", "2026-03-29 09:00"),
    ("fall back: every day keeps 09:00", drip(timedelta(days=1)), "2026-10-24 09:00",
     "2026-10-24 09:00", "2026-10-25 09:00"),
    ("spring forward: hours are elapsed time", drip(3 * H), "2026-03-29 00:30",
     "2026-03-29 00:30", "2026-03-29 04:30"),
    ("spring forward: a window opening in the skipped hour opens after it",
     drip(H, start=time(2, 30), end=time(5)), "2026-03-28 04:30", "2026-03-28 04:30",
     "2026-03-29 03:00"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "plan", "due", "now", "expected"), NEXT_CASES,
                         ids=[c[0] for c in NEXT_CASES])  # fmt: skip
def test_next_batch(case: str, plan: Plan, due: str, now: str, expected: str) -> None:
    assert next_batch_at(plan, local(due), local(now)) == local(expected)


def test_fall_back_hours_are_elapsed_time() -> None:
    # 2026-10-25 02:30 happens twice in Berlin; one hour after the first is the second.
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert next_batch_at(drip(H), first, first) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("plan", "now", "expected"),
    [
        (Plan(Mode.ALL_AT_ONCE), "2026-11-18 08:00", "2026-11-18 08:00"),
        (Plan(Mode.SCHEDULED, start_at=local("2026-12-01 10:00")), "2026-11-18 08:00",
         "2026-12-01 10:00"),
        (drip(H, WEEKDAYS, time(9), time(17)), "2026-11-21 08:00", "2026-11-23 09:00"),
        (Plan(Mode.DRIP, start_at=local("2026-11-18 12:00"), batch_size=5, every=H,
              window=Window("Europe/Berlin")), "2026-11-18 08:00", "2026-11-18 12:00"),
    ],
)  # fmt: skip
def test_first_batch(plan: Plan, now: str, expected: str) -> None:
    assert first_batch_at(plan, local(now)) == local(expected)


def test_all_at_once_and_scheduled_continue_at_once() -> None:
    now = local("2026-11-18 08:00")
    assert next_batch_at(Plan(Mode.ALL_AT_ONCE), now - H, now) == now
    assert Plan(Mode.ALL_AT_ONCE).batch_limit == 1000
    assert drip(H).batch_limit == 100


@pytest.mark.parametrize(
    "bad",
    [
        lambda: Plan(Mode.SCHEDULED),
        lambda: Plan(Mode.DRIP, batch_size=0, every=H, window=Window("UTC")),
        lambda: Plan(Mode.DRIP, batch_size=5, every=timedelta(0), window=Window("UTC")),
        lambda: Plan(Mode.DRIP, batch_size=5, every=H),
    ],
)
def test_incomplete_plans_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="needs"):
        bad()  # type: ignore[operator]
