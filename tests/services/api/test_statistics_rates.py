"""The spec's rate formulas: the SQL statistics_rate() the figures are counted with, and the
API's rate() for sums over compared campaigns, agree case by case."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from services.api.statistics import rate

CASES = [
    # numerator, denominator, percentage
    (0, 0, 0.0),  # zero when the denominator is zero
    (5, 0, 0.0),
    (0, 7, 0.0),
    (7, 7, 100.0),
    (1, 3, 33.33),
    (2, 3, 66.67),
    (1, 8, 12.5),
    (1, 200, 0.5),
    (1, 400, 0.25),
    (1, 800, 0.13),  # 0.125 rounds half away from zero
    (4, 9, 44.44),
    (9, 11, 81.82),
]


@pytest.mark.parametrize(("numerator", "denominator", "expected"), CASES)
async def test_rates_by_the_spec(
    pool: asyncpg.Pool[Any], numerator: int, denominator: int, expected: float
) -> None:
    in_sql = await pool.fetchval("SELECT statistics_rate($1, $2)", numerator, denominator)
    assert float(in_sql) == expected
    assert rate(numerator, denominator) == expected
