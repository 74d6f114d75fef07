"""Keyset pages: a list asks for one row more than the page holds, and that row's presence is
what says another page follows (no count query, no offset that shifts under inserts).

The cursor is made from the last item the page returns, never from the extra row: the next
page starts after what the client has seen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True)
class Keyset:
    """A page of at most `limit` items."""

    limit: int

    @property
    def fetch(self) -> int:
        """The LIMIT to bind: the page and the row that tells whether more follow."""
        return self.limit + 1

    def page(
        self, rows: Sequence[R], item: Callable[[R], T], cursor: Callable[[T], str]
    ) -> tuple[list[T], str | None]:
        """The page's items, and the cursor after its last one if more rows follow."""
        items = [item(row) for row in rows[: self.limit]]
        more = len(rows) > self.limit
        return items, cursor(items[-1]) if more else None
