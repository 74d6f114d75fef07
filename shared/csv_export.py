"""CSV files that people open in spreadsheets: the logs export (api) and the contacts export
(scheduler) both write theirs here, so neither can forget what follows.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run by a spreadsheet
as a formula (OWASP "CSV injection"). Replies and contact names are written by strangers, so
such a cell gets a leading apostrophe, which spreadsheets show as text. A cell that is only a
number (a phone such as +4915123456789, a balance such as -12.50) is read as a number, never
run, so it is left alone. A cell that already starts with an apostrophe gets one more, as a
spreadsheet would hide the first: so `restored` (the contacts import) can take exactly one
apostrophe off what `neutralised` wrote, and an exported file imports again unchanged.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_ESCAPED_STARTS = (*FORMULA_STARTS, "'")
# ASCII digits only: a spreadsheet does not read other scripts' digits as a number.
_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")


def neutralised(value: str) -> str:
    """The cell as a spreadsheet will show it as text, never run it."""
    if value.startswith(_ESCAPED_STARTS) and not _NUMBER.fullmatch(value):
        return f"'{value}"
    return value


def restored(cell: str) -> str:
    """The value `neutralised` wrote this cell for: its inverse, for reading an export back."""
    if cell.startswith("'") and cell[1:].startswith(_ESCAPED_STARTS):
        return cell[1:]
    return cell


def csv_bytes(rows: Iterable[Sequence[str | None]]) -> bytes:
    """Rows as UTF-8 CSV, every cell neutralised; None is an empty cell."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        ["" if cell is None else neutralised(cell) for cell in row] for row in rows
    )
    return buffer.getvalue().encode()
