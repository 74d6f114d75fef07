"""Safe template rendering and cron schedules in a campaign's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.campaigns import LaunchType
from shared.domain.schedules import next_run, occurrences_between, recurrence_problem
from shared.domain.templates import render, template_problems

RENDER = [
    ("Hi {first_name}!", {"first_name": "Ann"}, "Hi Ann!"),
    ("Hi {first_name} {last_name}", {"first_name": "Ann"}, "Hi Ann "),
    ("{{literal}} {x}", {"x": 1}, "{literal} 1"),
    ("no placeholders", {}, "no placeholders"),
]


@pytest.mark.parametrize(("text", "values", "rendered"), RENDER)
def test_render(text: str, values: dict[str, object], rendered: str) -> None:
    assert template_problems(text) == []
    assert render(text, values) == rendered


@pytest.mark.parametrize(
    "text",
    ["{user.__class__}", "{items[0]}", "{name!r}", "{name:>1000000}", "{unclosed", "{}", "{0}"],
)
def test_templates_reach_no_attribute_index_or_format_spec(text: str) -> None:
    assert template_problems(text) != []


def test_a_value_that_looks_like_a_template_is_not_expanded() -> None:
    assert render("Hi {first_name}", {"first_name": "{secret}"}) == "Hi {secret}"


@pytest.mark.parametrize(
    ("rule", "ok"),
    [
        ("0 9 * * 1-5", True),
        ("*/15 * * * *", True),
        ("61 * * * *", False),
        ("0 9 * *", False),
        ("@daily", False),
        ("0 9 * * 1-5 2026", False),
    ],
)
def test_recurrence_rules(rule: str, ok: bool) -> None:
    assert (recurrence_problem(rule) is None) is ok


SCHEDULES = [
    # rule, time zone, now (UTC) -> next run (UTC)
    (
        "0 9 * * *",
        "Europe/Berlin",
        datetime(2026, 1, 10, 12, tzinfo=UTC),
        datetime(2026, 1, 11, 8, tzinfo=UTC),
    ),  # 09:00 CET is 08:00 UTC
    (
        "0 9 * * *",
        "Europe/Berlin",
        datetime(2026, 7, 10, 12, tzinfo=UTC),
        datetime(2026, 7, 11, 7, tzinfo=UTC),
    ),  # 09:00 CEST is 07:00 UTC
    (
        "0 9 * * *",
        "Europe/Berlin",
        datetime(2026, 3, 28, 12, tzinfo=UTC),
        datetime(2026, 3, 29, 7, tzinfo=UTC),
    ),  # the night clocks go forward
    (
        "30 2 * * *",
        "Europe/Berlin",
        datetime(2026, 3, 28, 12, tzinfo=UTC),
        datetime(2026, 3, 29, 1, tzinfo=UTC),
    ),  # 02:30 does not exist: runs at 03:00, as cron does
    (
        "0 9 * * 1",
        "America/New_York",
        datetime(2026, 11, 20, tzinfo=UTC),
        datetime(2026, 11, 23, 14, tzinfo=UTC),
    ),
]


@pytest.mark.parametrize(("rule", "zone", "now", "expected"), SCHEDULES)
def test_next_recurring_run_in_the_campaign_time_zone(
    rule: str, zone: str, now: datetime, expected: datetime
) -> None:
    got = next_run(LaunchType.RECURRING, scheduled_at=None, recurrence=rule, timezone=zone, now=now)
    assert got == expected


def test_next_run_of_the_other_launch_types() -> None:
    at = datetime(2026, 5, 1, 10, tzinfo=UTC)
    now = datetime(2026, 4, 1, tzinfo=UTC)
    assert (
        next_run(LaunchType.SCHEDULE, scheduled_at=at, recurrence=None, timezone="UTC", now=now)
        == at
    )
    for kind in (LaunchType.NOW, LaunchType.MANUAL):
        assert next_run(kind, scheduled_at=at, recurrence=None, timezone="UTC", now=now) is None


def test_occurrences_between_is_half_open_and_capped() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2026, 1, 4, tzinfo=UTC)
    daily = occurrences_between("0 0 * * *", "UTC", start, end, limit=100)
    assert daily == [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    assert len(occurrences_between("* * * * *", "UTC", start, end, limit=10)) == 10
