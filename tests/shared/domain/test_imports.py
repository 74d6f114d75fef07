"""Reading an upload record by record, what a row means as a contact, and which contact it
updates (shared/domain/imports.py), table by table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

import pytest

from shared.domain import imports
from shared.domain.imports import (
    ContactRow,
    ContactState,
    Create,
    Duplicate,
    FieldProblem,
    FileRefused,
    Format,
    Known,
    Reader,
    Record,
    Refused,
    Update,
)

A = UUID(int=1)
B = UUID(int=2)


def read(format: Format, *pieces: str, limit: int = imports.MAX_ROW_CHARS) -> list[Record]:
    reader = Reader(format, limit)
    records: list[Record] = []
    for piece in pieces:
        records.extend(reader.feed(piece))
    return records + reader.finish()


CSV_FILES: list[tuple[str, tuple[str, ...], list[Record]]] = [
    (
        "one row",
        ("phone,first_name\n+4915123456789,Ann\n",),
        [Record(2, {"phone": "+4915123456789", "first_name": "Ann"})],
    ),
    (
        "cut anywhere, CRLF, no final newline",
        ("telegram_username,la", "st_name\r\nann_", "smith,Sm", "ith\r\nbob_jones,Jones"),
        [
            Record(2, {"telegram_username": "ann_smith", "last_name": "Smith"}),
            Record(3, {"telegram_username": "bob_jones", "last_name": "Jones"}),
        ],
    ),
    (
        "a quoted cell over two lines keeps its line break and the row its first line",
        ('phone,note\n+4915123456789,"one\n', 'two"\n+4915123456780,x\n'),
        [
            Record(2, {"phone": "+4915123456789", "note": "one\ntwo"}),
            Record(4, {"phone": "+4915123456780", "note": "x"}),
        ],
    ),
    (
        "blank lines are skipped, line numbers go on",
        ("phone\n\n+4915123456789\n\n",),
        [Record(3, {"phone": "+4915123456789"})],
    ),
    (
        "too many values, a NUL: kept as failed rows",
        ("phone\n1,2\n\x00\n",),
        [Record(2, None, "too_many_values"), Record(3, None, "nul_character")],
    ),
    (
        "fewer values than columns: the rest are not given",
        ("phone,first_name\n+4915123456789\n",),
        [Record(2, {"phone": "+4915123456789"})],
    ),
    (
        "a byte-order mark and an unnamed column",
        ("\ufeffphone,\n+4915123456789,ignored\n",),
        [Record(2, {"phone": "+4915123456789"})],
    ),
]


@pytest.mark.parametrize(("case", "pieces", "expected"), CSV_FILES, ids=[c[0] for c in CSV_FILES])
def test_csv_records(case: str, pieces: tuple[str, ...], expected: list[Record]) -> None:
    assert read(Format.CSV, *pieces) == expected


JSONL_FILES: list[tuple[str, tuple[str, ...], list[Record]]] = [
    (
        "objects, cut anywhere",
        ('{"phone": "+49151', '23456789"}\n\n{"telegram_username": "ann_smith"}'),
        [
            Record(1, {"phone": "+4915123456789"}),
            Record(3, {"telegram_username": "ann_smith"}),
        ],
    ),
    (
        "not JSON, not an object, a NUL, a lone surrogate",
        ('{"phone": \n[1]\n{"a": "\\u0000"}\n{"a": "\\ud800"}\n',),
        [
            Record(1, None, "malformed_json"),
            Record(2, None, "malformed_json"),
            Record(3, None, "nul_character"),
            Record(4, None, "malformed_json"),
        ],
    ),
]


@pytest.mark.parametrize(
    ("case", "pieces", "expected"), JSONL_FILES, ids=[c[0] for c in JSONL_FILES]
)
def test_jsonl_records(case: str, pieces: tuple[str, ...], expected: list[Record]) -> None:
    assert read(Format.JSONL, *pieces) == expected


REFUSED: list[tuple[str, Format, tuple[str, ...], str]] = [
    ("empty", Format.CSV, ("",), "import_empty"),
    ("a header only", Format.CSV, ("phone\n",), "import_empty"),
    ("blank lines only", Format.JSONL, ("\n\n",), "import_empty"),
    ("no identifier column", Format.CSV, ("first_name\nAnn\n",), "import_malformed"),
    ("a column twice", Format.CSV, ("phone,phone\n1,2\n",), "import_malformed"),
    ("a quote never closed", Format.CSV, ('phone\n"+491\n',), "import_malformed"),
    ("a row too long", Format.CSV, ("phone\n" + "1" * 80 + "\n",), "import_row_too_large"),
    ("a line too long, unended", Format.JSONL, ("{" * 80,), "import_row_too_large"),
    ("a quote swallowing the file", Format.CSV, ('phone\n"', "1\n" * 40), "import_row_too_large"),
]


@pytest.mark.parametrize(("case", "format", "pieces", "code"), REFUSED, ids=[c[0] for c in REFUSED])
def test_files_refused_whole(case: str, format: Format, pieces: tuple[str, ...], code: str) -> None:
    with pytest.raises(FileRefused) as refused:
        read(format, *pieces, limit=64)
    assert refused.value.code == code


ROWS: list[tuple[str, Format, dict[str, Any], ContactRow | list[str]]] = [
    (
        "CSV: known columns, tags, custom fields, an export's apostrophe",
        Format.CSV,
        {"telegram_username": "@Ann_Smith", "phone": "+49 151 2345-6789", "tags": "a; b;;a",
         "telegram_user_id": "42", "plan": "'=pro", "empty": " "},
        ContactRow(telegram_username="Ann_Smith", phone="+4915123456789", telegram_user_id=42,
                   tags=("a", "b"), custom_fields={"plan": "=pro"}),
    ),
    ("CSV: an external id alone finds", Format.CSV, {"external_id": "crm-1"},
     ContactRow(external_id="crm-1")),
    ("CSV: empty tags are not given", Format.CSV, {"phone": "+4915123456789", "tags": ""},
     ContactRow(phone="+4915123456789")),
    ("bad phone", Format.CSV, {"phone": "12"}, ["invalid_phone"]),
    ("bad username", Format.CSV, {"telegram_username": "a b"}, ["invalid_username"]),
    ("bad user id", Format.CSV, {"telegram_user_id": "x", "phone": "+4915123456789"},
     ["invalid_user_id"]),
    ("user id out of range", Format.CSV, {"telegram_user_id": "0"}, ["invalid_user_id"]),
    ("name too long", Format.CSV, {"phone": "+4915123456789", "first_name": "x" * 201},
     ["too_long"]),
    ("custom value too long", Format.CSV, {"phone": "+4915123456789", "note": "x" * 5001},
     ["too_long"]),
    ("tag too long", Format.CSV, {"phone": "+4915123456789", "tags": "x" * 65}, ["too_long"]),
    ("every problem", Format.CSV, {"phone": "1", "telegram_username": "1"},
     ["invalid_phone", "invalid_username"]),
    ("no identifier", Format.CSV, {"first_name": "Ann"}, ["identifier_missing"]),
    (
        "JSONL: lists, numbers, custom_fields",
        Format.JSONL,
        {"phone": "+4915123456789", "telegram_user_id": 7, "tags": ["x"],
         "custom_fields": {"seats": 3, "vip": True}},
        ContactRow(phone="+4915123456789", telegram_user_id=7, tags=("x",),
                   custom_fields={"seats": 3, "vip": True}),
    ),
    ("JSONL: unknown column", Format.JSONL, {"phone": "+4915123456789", "nick": "a"},
     ["unknown_column"]),
    ("JSONL: a non-text name", Format.JSONL, {"phone": "+4915123456789", "first_name": 5},
     ["invalid_value"]),
    ("JSONL: a nested custom value", Format.JSONL,
     {"phone": "+4915123456789", "custom_fields": {"a": [1]}}, ["invalid_value"]),
    ("JSONL: custom_fields not an object", Format.JSONL,
     {"phone": "+4915123456789", "custom_fields": [1]}, ["invalid_value"]),
    ("JSONL: nulls are not given", Format.JSONL, {"phone": "+4915123456789", "last_name": None},
     ContactRow(phone="+4915123456789")),
    ("CSV: a time zone", Format.CSV, {"phone": "+4915123456789", "time_zone": " Europe/Berlin "},
     ContactRow(phone="+4915123456789", time_zone="Europe/Berlin")),
    ("CSV: an empty time zone is not given", Format.CSV,
     {"phone": "+4915123456789", "time_zone": ""}, ContactRow(phone="+4915123456789")),
    ("JSONL: a time zone", Format.JSONL,
     {"phone": "+4915123456789", "time_zone": "America/New_York"},
     ContactRow(phone="+4915123456789", time_zone="America/New_York")),
    ("unknown time zone", Format.CSV, {"phone": "+4915123456789", "time_zone": "Mars/Olympus"},
     ["unknown_time_zone"]),
    ("a zone file that is not a place", Format.CSV,
     {"phone": "+4915123456789", "time_zone": "posix/Europe/Berlin"}, ["unknown_time_zone"]),
    ("JSONL: a time zone that is not text", Format.JSONL,
     {"phone": "+4915123456789", "time_zone": 3}, ["invalid_value"]),
    ("every problem, the zone's too", Format.CSV, {"phone": "1", "time_zone": "Nowhere"},
     ["invalid_phone", "unknown_time_zone"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "format", "data", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_what_a_row_means(
    case: str, format: Format, data: dict[str, Any], expected: ContactRow | list[str]
) -> None:
    meant = imports.contact_row(data, format)
    if isinstance(expected, ContactRow):
        assert meant == expected
    else:
        assert isinstance(meant, list)
        assert all(isinstance(p, FieldProblem) and p.message for p in meant)
        assert [p.code for p in meant] == expected


ROW = ContactRow(external_id="crm-1", telegram_username="ann_smith", phone="+4915123456789")
MATCHES: list[tuple[str, ContactRow, Known | None, Known | None, Known | None, Any]] = [
    ("nothing found: created", ROW, None, None, None, Create()),
    ("by external id first", ROW, Known(A, external_id="crm-1"), None, None,
     Update(A, "external_id")),
    ("by username", ROW, None, Known(A), None, Update(A, "telegram_username")),
    ("by phone", ROW, None, None, Known(A), Update(A, "phone")),
    ("all three the same contact", ROW, Known(A, external_id="crm-1"), Known(A), Known(A),
     Update(A, "external_id")),
    ("two contacts: a duplicate", ROW, None, Known(A), Known(B), Duplicate(A, B)),
    ("external id and another by phone", ROW, Known(B, external_id="crm-1"), None, Known(A),
     Duplicate(B, A)),
    ("a deleted contact by external id", ROW, Known(A, deleted=True, external_id="crm-1"), None,
     None, Refused("contact_deleted", "")),
    ("found by username with another external id", ROW, None, Known(A, external_id="crm-9"),
     None, Refused("external_id_conflict", "")),
    ("an external id alone finds nothing", ContactRow(external_id="crm-2"), None, None, None,
     Refused("identifier_missing", "")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "row", "external", "username", "phone", "expected"),
    MATCHES,
    ids=[m[0] for m in MATCHES],
)
def test_which_contact_a_row_is(
    case: str,
    row: ContactRow,
    external: Known | None,
    username: Known | None,
    phone: Known | None,
    expected: Any,
) -> None:
    decided = imports.match(row, external, username, phone)
    if isinstance(expected, Refused):
        assert isinstance(decided, Refused)
        assert decided.code == expected.code
        assert decided.message
    else:
        assert decided == expected


STATE = ContactState("crm-1", "ann_smith", None, None, "Ann", None, ("old",), {"a": 1, "b": 2})
APPLIED: list[tuple[str, ContactState | None, ContactRow, tuple[str, ...], ContactState]] = [
    ("new, with the import's tags", None, ContactRow(phone="+4915123456789", tags=("x",)),
     ("lead",),
     ContactState(None, None, "+4915123456789", None, None, None, ("x", "lead"), {})),
    ("given fields change, custom fields merge, tags kept", STATE,
     ContactRow(phone="+4915123456789", first_name="Anna", custom_fields={"b": 3}), (),
     ContactState("crm-1", "ann_smith", "+4915123456789", None, "Anna", None, ("old",),
                  {"a": 1, "b": 3})),
    ("tags given are replaced, the import's added once", STATE,
     ContactRow(tags=("new", "lead")), ("lead",),
     ContactState("crm-1", "ann_smith", None, None, "Ann", None, ("new", "lead"),
                  {"a": 1, "b": 2})),
    ("new, with a time zone", None,
     ContactRow(phone="+4915123456789", time_zone="Asia/Tokyo"), (),
     ContactState(None, None, "+4915123456789", None, None, None, (), {}, "Asia/Tokyo")),
    ("a time zone given replaces the old one", replace(STATE, time_zone="Europe/Berlin"),
     ContactRow(time_zone="Europe/Paris"), (),
     replace(STATE, time_zone="Europe/Paris")),
    ("no time zone given keeps the old one", replace(STATE, time_zone="Europe/Berlin"),
     ContactRow(first_name="Anna"), (),
     replace(STATE, first_name="Anna", time_zone="Europe/Berlin")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "state", "row", "tags", "expected"), APPLIED, ids=[a[0] for a in APPLIED]
)
def test_a_row_applied(
    case: str,
    state: ContactState | None,
    row: ContactRow,
    tags: tuple[str, ...],
    expected: ContactState,
) -> None:
    assert imports.applied(state, row, tags) == expected
