"""The keyset page helper: one row more than the page says another page follows."""

from __future__ import annotations

import pytest

from services.api.paging import Keyset


@pytest.mark.parametrize(
    ("rows", "limit", "items", "cursor"),
    [
        ([], 3, [], None),
        ([1, 2], 3, [10, 20], None),
        ([1, 2, 3], 3, [10, 20, 30], None),
        ([1, 2, 3, 4], 3, [10, 20, 30], "after 30"),
        ([1, 2], 1, [10], "after 10"),
    ],
)
def test_page(rows: list[int], limit: int, items: list[int], cursor: str | None) -> None:
    keyset = Keyset(limit)
    assert keyset.fetch == limit + 1
    assert keyset.page(rows, lambda r: r * 10, lambda last: f"after {last}") == (items, cursor)
