"""Safe template rendering and cron schedules in a campaign's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.domain.campaigns import LaunchType
from shared.domain.schedules import next_run, occurrences_between, recurrence_problem
from shared.domain.templates import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    limit_problem,
    longest_length,
    placeholders,
    render,
    template_problems,
)

RENDER = [
    ("Hi {first_name}!", {"first_name": "Ann"}, "Hi Ann!"),
    ("Hi {first_name} {last_name}", {"first_name": "Ann"}, "Hi Ann "),
    ("{{literal}} {x}", {"x": 1}, "{literal} 1"),
    ("no placeholders", {}, "no placeholders"),
    ("Hi {first_name|there}!", {"first_name": "Ann"}, "Hi Ann!"),
    ("Hi {first_name|there}!", {}, "Hi there!"),
    ("Hi {first_name|there}!", {"first_name": None}, "Hi there!"),
    ("Hi {first_name|there}!", {"first_name": "  "}, "Hi there!"),
    ("Hi {first_name}!", {"first_name": "  "}, "Hi   !"),
    ("At {fields.company|your company}", {"company": "Acme"}, "At Acme"),
    ("At {fields.company|your company}", {}, "At your company"),
    ("At {company}", {"company": "Acme"}, "At Acme"),
    ("{Hi|Hi} {first_name|there}", {}, "Hi there"),
    ("{a|a}}}", {}, "a}"),
    ("a | b", {}, "a | b"),
    ("{{Hi|Hello}}", {}, "{Hi|Hello}"),
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
    assert render("Hi {first_name|x}", {"first_name": "{Hi|Yo}"}) == "Hi {Hi|Yo}"


PROBLEMS = [
    # template -> the problems' codes
    ("{Hi|Hello", ["unbalanced_braces"]),
    ("Hi|Hello}", ["unbalanced_braces"]),
    ("{Hi|{first_name}}", ["unbalanced_braces", "unbalanced_braces"]),
    ("{Hi||Hello}", ["empty_alternative"]),
    ("{|Hello}", ["empty_alternative"]),
    ("{Hi|}", ["empty_alternative"]),
    ("{first_name|}", ["empty_alternative"]),
    ("{first_name|there|friend}", ["invalid_template"]),
    ("{Hello there}", ["invalid_template"]),
    ("{fields.}", ["invalid_template"]),
    ("{}", ["invalid_template"]),
    ("{Hi|Hello} {first_name|there}, {a|b|c}", []),
    ("{first_name} {last_name|} {", ["empty_alternative", "unbalanced_braces"]),
]


@pytest.mark.parametrize(("text", "codes"), PROBLEMS)
def test_template_problem_codes(text: str, codes: list[str]) -> None:
    assert [p.code for p in template_problems(text)] == codes


def test_spintax_is_stable_per_seed_and_spread_over_seeds() -> None:
    text = "{Hi|Hello|Hey} {first_name|there}, {one|two}"
    values = {"first_name": "Ann"}
    first = render(text, values, "contact-1:step-a")
    assert all(render(text, values, "contact-1:step-a") == first for _ in range(20))
    seen = {render(text, values, f"contact-{i}:step-a") for i in range(200)}
    greetings = {s.split(" ")[0] for s in seen}
    assert greetings == {"Hi", "Hello", "Hey"}
    assert {s.rsplit(" ", 1)[1] for s in seen} == {"one", "two"}
    assert all(" Ann, " in s for s in seen)


def test_spintax_differs_by_step() -> None:
    text = "{a|b|c|d|e|f|g|h}"
    by_step = {render(text, {}, f"contact-1:step-{i}") for i in range(50)}
    assert len(by_step) > 1


LENGTHS = [
    # template -> its longest rendering as validation measures it
    ("Hello", 5),
    ("{Hi|Hello|Hey}!", 6),
    ("{first_name|there}", 5),
    ("{first_name}", 0),
    ("{{x}}", 3),
]


@pytest.mark.parametrize(("text", "length"), LENGTHS)
def test_longest_length(text: str, length: int) -> None:
    assert longest_length(text) == length


LIMITS = [
    # template, as a caption? -> the problem's code
    ("x" * TEXT_LIMIT, False, None),
    ("x" * (TEXT_LIMIT + 1), False, "text_too_long"),
    ("x" * CAPTION_LIMIT, True, None),
    ("x" * (CAPTION_LIMIT + 1), True, "caption_too_long"),
    ("{" + "x" * TEXT_LIMIT + "|y}", False, None),
    ("{" + "x" * TEXT_LIMIT + "|y}!", False, "text_too_long"),
    ("x{short|" + "y" * CAPTION_LIMIT + "}", True, "caption_too_long"),
    ("{first_name|" + "y" * 1000 + "}" + "x" * 25, True, "caption_too_long"),
]


@pytest.mark.parametrize(("text", "caption", "code"), LIMITS)
def test_telegram_limits(text: str, caption: bool, code: str | None) -> None:
    problem = limit_problem(text, caption=caption)
    assert (problem.code if problem else None) == code


def test_placeholders_name_variables_not_spintax() -> None:
    assert placeholders("{Hi|Hello} {first_name|there} {fields.company} {x}") == [
        "first_name",
        "company",
        "x",
    ]


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
