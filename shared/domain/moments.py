"""The one bounded datetime every accepted date uses (request bodies, query parameters, cursors).

Python's datetime ends at year 9999 and starts at year 1, so a moment near either end, moved
into a time zone (Pacific/Kiritimati is UTC+14, the calendar converts into the campaign's zone)
or into UTC (asyncpg does, for timestamptz), overflows: the probe's 9999-12-31 schedules broke
the calendar for every later reader. Nothing Dripline plans is meaningful outside this century,
so a moment must lie in [2000-01-01, 2100-01-01) UTC; every conversion of it stays in range.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive


def within_bounds(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"must be from {EARLIEST.date().isoformat()} up to (not including) "
            f"{LATEST.date().isoformat()}, UTC"
        )
    return value


Moment = Annotated[AwareDatetime, AfterValidator(within_bounds)]
