"""The one function both CSV exports write their cells through (OWASP "CSV injection")."""

from __future__ import annotations

import csv
import io

import pytest

from shared.csv_export import csv_bytes, neutralised, restored


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://x","y")',
        "+SUM(A1:A9)",
        "-1+1",
        "@cmd",
        "\t=1+1",
        "\r=1+1",
        "=1",
        "+1e3",  # a spreadsheet reads it as a formula that yields 1000
        "-1-1",
        "+\uff11\uff12",  # full-width digits are not a number to a spreadsheet
        "-12\n=1",  # a number on the first line only
        "'=already text",  # one more apostrophe: the spreadsheet hides the first
        "'",
    ],
)
def test_a_cell_a_spreadsheet_would_run_becomes_text(cell: str) -> None:
    assert neutralised(cell) == "'" + cell


@pytest.mark.parametrize(
    "cell", ["", "fine, thanks", "+4915123456789", "-12.50", "12", "a=b", "it's"]
)
def test_text_and_plain_numbers_stay_as_written(cell: str) -> None:
    assert neutralised(cell) == cell


def test_rows_are_csv_with_every_cell_neutralised() -> None:
    written = csv_bytes([("name", "note"), ("=cmd()", None), ("Ann", "-1+1")])
    assert list(csv.reader(io.StringIO(written.decode()))) == [
        ["name", "note"],
        ["'=cmd()", ""],
        ["Ann", "'-1+1"],
    ]


@pytest.mark.parametrize(
    "value",
    ["", "Ann", "=cmd()", "'=cmd()", "''", "'", "+4915123456789", "-1+1", "it's", "'quoted'", "@x"],
)
def test_restored_reads_back_what_neutralised_wrote(value: str) -> None:
    assert restored(neutralised(value)) == value
