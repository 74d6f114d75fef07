"""Contact imports as a tracked bulk action (issue 19, item 4): reading an upload record by
record (CSV or JSONL, fed in pieces, so a file of any size never sits in memory whole), what a
record means as a contact (with a reason per field when it does not hold), and which existing
contact a row updates: contact.upsert's rule (external id, else username, else phone). Pure
functions; the API streams the upload through `Reader` and the scheduler applies the rows.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from uuid import UUID

from shared.csv_export import restored
from shared.domain import identifiers
from shared.domain.recipient_zones import valid_zone

# A record longer than this (in characters) is refused, and the upload with it: a row that size
# is not a contact but a broken file (an unclosed quote swallowing the rest, say).
MAX_ROW_CHARS = 65_536
MAX_TAGS = 100
MAX_TAG = 64
MAX_NAME = 200
MAX_EXTERNAL_ID = 200
MAX_CUSTOM_FIELDS = 50
MAX_FIELD_NAME = 64
MAX_FIELD_TEXT = 5000
IDENTIFIERS = ("telegram_username", "phone", "telegram_user_id")
# What finds an existing contact, in contact.upsert's order; a CSV header needs one of them.
MATCHED_BY = ("external_id", "telegram_username", "phone")
KNOWN = ("external_id", *IDENTIFIERS, "first_name", "last_name", "tags", "time_zone")


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


class FileRefused(Exception):
    """The upload as a whole cannot be read: nothing of it is kept."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


# What makes a record unreadable (kept on the row as its code; the row fails with it).
PARSE_ERRORS = {
    "too_many_values": "the row has more values than the header has columns",
    "malformed_row": "the row is not valid CSV",
    "malformed_json": "the line is not a JSON object",
    "nul_character": "the row contains a NUL character, which cannot be stored",
}


@dataclass(frozen=True)
class Record:
    line: int  # where it starts in the file (a CSV header is line 1)
    data: dict[str, Any] | None
    parse_error: str | None = None  # a PARSE_ERRORS code


class Reader:
    """Feed the upload's text in pieces; get back its complete records. For CSV the first
    record is the header: every later record becomes {column: cell}. Blank lines are skipped.
    Lines end with LF or CRLF (a file with CR-only line ends reads as one long line and is
    refused as too large a row)."""

    def __init__(self, format: Format, max_row_chars: int = MAX_ROW_CHARS) -> None:
        self.format = format
        self.max_row_chars = max_row_chars
        self.columns: list[str] | None = None if format is Format.CSV else []
        self.records = 0
        self._tail = ""  # a line not ended yet
        self._pending = ""  # a CSV record's lines so far (a quoted cell spans lines)
        self._pending_start = 1
        self._line = 1  # the line the next complete line is

    def feed(self, text: str) -> list[Record]:
        out: list[Record] = []
        text = self._tail + text
        lines = text.split("\n")
        self._tail = lines.pop()
        if len(self._tail) + len(self._pending) > self.max_row_chars:
            raise self._too_large(self._pending_start if self._pending else self._line)
        for line in lines:
            self._take(line + "\n", out)
        return out

    def finish(self) -> list[Record]:
        out: list[Record] = []
        if self._tail:
            self._take(self._tail, out)
            self._tail = ""
        if self._pending:
            raise FileRefused(
                "import_malformed",
                f"line {self._pending_start}: a quoted cell is never closed; nothing was imported",
            )
        if self.columns is None or self.records == 0:
            raise FileRefused("import_empty", "the file has no rows to import")
        return out

    def _too_large(self, line: int) -> FileRefused:
        return FileRefused(
            "import_row_too_large",
            f"line {line}: a row is longer than {self.max_row_chars} characters"
            " (or a quoted cell is never closed); nothing was imported",
        )

    def _take(self, line: str, out: list[Record]) -> None:
        number = self._line
        self._line += 1
        if self.format is Format.JSONL:
            if len(line) > self.max_row_chars:
                raise self._too_large(number)
            if line.strip():
                self.records += 1
                out.append(_json_record(number, line))
            return
        if not self._pending:
            self._pending_start = number
        self._pending += line
        if len(self._pending) > self.max_row_chars:
            raise self._too_large(self._pending_start)
        try:
            cells = list(csv.reader(io.StringIO(self._pending, newline=""), strict=True))
        except csv.Error as exc:
            if "end of data" in str(exc):
                return  # inside a quoted cell: the record goes on on the next line
            cells = None
        start, self._pending = self._pending_start, ""
        if cells is not None and not any(cells):
            return  # a blank line
        record = self._csv_record(start, cells)
        if record is not None:
            self.records += 1
            out.append(record)

    def _csv_record(self, line: int, cells: list[list[str]] | None) -> Record | None:
        if self.columns is None:
            if cells is None or len(cells) != 1:
                raise FileRefused("import_malformed", "line 1: the header is not valid CSV")
            self.columns = header(cells[0])
            return None
        if cells is None or len(cells) != 1:
            return Record(line, None, "malformed_row")
        values = cells[0]
        if len(values) > len(self.columns):
            return Record(line, None, "too_many_values")
        if any("\x00" in cell for cell in values):
            return Record(line, None, "nul_character")
        data = {name: cell for name, cell in zip(self.columns, values, strict=False) if name}
        return Record(line, data)


def header(cells: list[str]) -> list[str]:
    """A CSV header's column names; refused whole when it names a column twice (which would
    win is a guess: the file must say) or no column to find or create a contact by."""
    names = [cell.strip().removeprefix("\ufeff") for cell in cells]
    if any("\x00" in name for name in names):
        raise FileRefused("import_malformed", "the header contains a NUL character")
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        raise FileRefused(
            "import_malformed", "the header names a column more than once: " + ", ".join(twice)
        )
    if not any(name in (*MATCHED_BY, "telegram_user_id") for name in names):
        raise FileRefused(
            "import_malformed",
            "the header needs at least one of external_id, telegram_username, phone,"
            " telegram_user_id",
        )
    return names


def _json_record(line: int, text: str) -> Record:
    if "\\u0000" in text or "\x00" in text:
        return Record(line, None, "nul_character")
    try:
        value = json.loads(text)
    except ValueError:
        return Record(line, None, "malformed_json")
    if not isinstance(value, dict):
        return Record(line, None, "malformed_json")
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate escape: not text PostgreSQL can store
        return Record(line, None, "malformed_json")
    return Record(line, value)


# What a row means -------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldProblem:
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class ContactRow:
    """A row's contact: None is "not given" (an update keeps the value)."""

    external_id: str | None = None
    telegram_username: str | None = None
    phone: str | None = None
    telegram_user_id: int | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: tuple[str, ...] | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    time_zone: str | None = None  # an IANA name the zone database knows

    @property
    def identified(self) -> bool:
        return any(getattr(self, name) is not None for name in IDENTIFIERS)


def contact_row(data: dict[str, Any], format: Format) -> ContactRow | list[FieldProblem]:
    """A record as a contact, or every reason it is not one. CSV: the known columns, `tags`
    separated by ';', and every other column a custom field (as the synchronous import reads
    it; a cell an export neutralised with an apostrophe reads back as written). JSONL: the known
    keys, `tags` a list (or a ';' string) and `custom_fields` an object; any other key is an
    unknown column."""
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, raw in data.items():
        if key in KNOWN:
            _known(key, raw, values, problems)
        elif format is Format.CSV:
            cell = _text(raw).strip()
            if cell:
                custom[key] = cell
        elif key == "custom_fields":
            if not isinstance(raw, dict):
                problems.append(FieldProblem(key, "invalid_value", "custom_fields is an object"))
            else:
                custom.update(raw)
        else:
            problems.append(FieldProblem(key, "unknown_column", f"unknown column {key!r}"))
    problems.extend(_custom_problems(custom))
    if problems:
        return problems
    row = ContactRow(custom_fields=custom, **values)
    if not row.identified and row.external_id is None:
        return [
            FieldProblem(
                "telegram_username",
                "identifier_missing",
                "give at least one of telegram_username, phone or telegram_user_id",
            )
        ]
    return row


def _text(raw: Any) -> str:
    """A cell as text; an export's apostrophe comes off."""
    return restored(raw) if isinstance(raw, str) else str(raw)


def _known(key: str, raw: Any, values: dict[str, Any], problems: list[FieldProblem]) -> None:
    if raw is None:
        return
    if key == "tags":
        tags = _tags(raw)
        if isinstance(tags, FieldProblem):
            problems.append(tags)
        elif tags:
            values["tags"] = tags
        return
    if key == "telegram_user_id" and isinstance(raw, int) and not isinstance(raw, bool):
        cell = str(raw)
    elif isinstance(raw, str):
        cell = _text(raw).strip()
    else:
        problems.append(FieldProblem(key, "invalid_value", f"{key} is text"))
        return
    if not cell:
        return
    try:
        if key == "telegram_username":
            values[key] = identifiers.username(cell)
        elif key == "phone":
            values[key] = identifiers.phone(cell)
        elif key == "telegram_user_id":
            number = int(cell)
            if not 0 < number < 2**63:
                raise ValueError("a Telegram user id is a positive 64-bit number")
            values[key] = number
        elif key == "time_zone":
            zone = valid_zone(cell)
            if zone is None:
                problems.append(
                    FieldProblem(
                        key,
                        "unknown_time_zone",
                        f"unknown time zone {cell!r}: give an IANA name such as Europe/Berlin",
                    )
                )
                return
            values[key] = zone
        else:
            limit = MAX_EXTERNAL_ID if key == "external_id" else MAX_NAME
            if len(cell) > limit:
                problems.append(
                    FieldProblem(key, "too_long", f"{key} is longer than {limit} characters")
                )
                return
            values[key] = cell
    except ValueError as exc:
        code = {"telegram_username": "invalid_username", "phone": "invalid_phone"}.get(
            key, "invalid_user_id"
        )
        message = str(exc) if key != "telegram_user_id" or "64-bit" in str(exc) else (
            "a Telegram user id is a number"
        )  # fmt: skip
        problems.append(FieldProblem(key, code, message))


def _tags(raw: Any) -> tuple[str, ...] | FieldProblem:
    if isinstance(raw, str):
        items = [t.strip() for t in _text(raw).split(";")]
    elif isinstance(raw, list) and all(isinstance(t, str) for t in raw):
        items = [t.strip() for t in raw]
    else:
        return FieldProblem("tags", "invalid_value", "tags are text separated by ';', or a list")
    tags = tuple(dict.fromkeys(t for t in items if t))
    if len(tags) > MAX_TAGS:
        return FieldProblem("tags", "too_many", f"at most {MAX_TAGS} tags")
    long = [t for t in tags if len(t) > MAX_TAG]
    if long:
        return FieldProblem("tags", "too_long", f"a tag is longer than {MAX_TAG} characters")
    return tags


def _custom_problems(custom: dict[str, Any]) -> list[FieldProblem]:
    if len(custom) > MAX_CUSTOM_FIELDS:
        return [FieldProblem("custom_fields", "too_many", f"at most {MAX_CUSTOM_FIELDS} fields")]
    problems = []
    for key, value in custom.items():
        name = f"custom_fields.{key}"
        if not 1 <= len(key) <= MAX_FIELD_NAME:
            problems.append(
                FieldProblem(name, "too_long", f"a field name has 1-{MAX_FIELD_NAME} characters")
            )
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            problems.append(FieldProblem(name, "invalid_value", "a field's value is a scalar"))
        elif isinstance(value, str) and len(value) > MAX_FIELD_TEXT:
            problems.append(
                FieldProblem(name, "too_long", f"longer than {MAX_FIELD_TEXT} characters")
            )
    return problems


# Which contact a row is ----------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """An existing contact a row's identifiers found."""

    id: UUID
    deleted: bool = False
    external_id: str | None = None


@dataclass(frozen=True)
class Create:
    pass


@dataclass(frozen=True)
class Update:
    contact_id: UUID
    via: str  # external_id, telegram_username or phone


@dataclass(frozen=True)
class Duplicate:
    """The row's identifiers find two different contacts: which one it means is a guess, and
    merging them is irreversible and needs a person's confirmation (POST /contacts/merge)."""

    contact_id: UUID  # the one contact.upsert would update
    other_id: UUID


@dataclass(frozen=True)
class Refused:
    code: str
    message: str


Match = Create | Update | Duplicate | Refused


def match(
    row: ContactRow,
    by_external_id: Known | None,
    by_username: Known | None,
    by_phone: Known | None,
) -> Match:
    """contact.upsert's rule: the contact with the row's external id (a deleted one refuses:
    restore it first), else the oldest live one with its username (any case), else with its
    phone; found by username or phone, a different external id is a conflict. Beyond it: when
    the identifiers find two different live contacts, the row is a duplicate, not applied."""
    if by_external_id is not None and by_external_id.deleted:
        return Refused("contact_deleted", "the contact with this external_id is deleted")
    found = [
        (via, known)
        for via, known in (
            ("external_id", by_external_id),
            ("telegram_username", by_username),
            ("phone", by_phone),
        )
        if known is not None
    ]
    if not found:
        if not row.identified:
            return Refused(
                "identifier_missing",
                "no contact has this external_id, and a new contact needs a"
                " telegram_username, phone or telegram_user_id",
            )
        return Create()
    via, chosen = found[0]
    others = [known.id for _, known in found if known.id != chosen.id]
    if others:
        return Duplicate(chosen.id, others[0])
    if (
        via != "external_id"
        and row.external_id is not None
        and chosen.external_id is not None
        and chosen.external_id != row.external_id
    ):
        return Refused(
            "external_id_conflict", "the contact found by username or phone has another external id"
        )
    return Update(chosen.id, via)


@dataclass(frozen=True)
class ContactState:
    external_id: str | None
    telegram_username: str | None
    phone: str | None
    telegram_user_id: int | None
    first_name: str | None
    last_name: str | None
    tags: tuple[str, ...]
    custom_fields: dict[str, Any]
    time_zone: str | None = None


def applied(state: ContactState | None, row: ContactRow, tags: tuple[str, ...]) -> ContactState:
    """The contact after the row (contact.upsert's update: the fields given change, custom
    fields merge, tags are replaced when given), with the import's own `tags` added."""
    if state is None:
        state = ContactState(None, None, None, None, None, None, (), {})
    values = {
        name: getattr(row, name)
        for name in (
            "external_id",
            "telegram_username",
            "phone",
            "telegram_user_id",
            "first_name",
            "last_name",
            "time_zone",
        )
        if getattr(row, name) is not None
    }
    own = row.tags if row.tags is not None else state.tags
    return replace(
        state,
        **values,
        tags=tuple(dict.fromkeys((*own, *tags))),
        custom_fields={**state.custom_fields, **row.custom_fields},
    )
