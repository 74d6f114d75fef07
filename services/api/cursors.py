"""Opaque keyset cursors: the last row's sort value and id, base64 JSON.

A cursor comes back from the client, so it is input like any other: `decode` checks the
encoding and types every value through the position's model (bounded moments, UUIDs, 64-bit
ids, NUL-free text) before a list binds it, and anything else is 400 `invalid_cursor`. The
lists never parse a cursor value themselves.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from services.api.problems import Problem
from shared.domain.moments import Moment


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, Field(max_length=1000), AfterValidator(_no_nul)]


class Position(BaseModel):
    # Unknown keys are ignored: a position is read by the keys it needs.
    model_config = ConfigDict(extra="ignore", frozen=True)


class CreatedPosition(Position):
    """Lists in created_at order: the last row's created_at and id."""

    c: Moment
    i: UUID


class TimedPosition(Position):
    """Lists in (time, created_at, id) order: a conversation's messages, whose times Telegram
    gives to the second, so that ties keep the order they were written in."""

    t: Moment
    c: Moment
    i: UUID


class IdPosition(Position):
    """Lists in id order."""

    i: UUID


class LinePosition(Position):
    """Lists in line order (an import's rows)."""

    n: int = Field(ge=0, lt=2**31)


class LogPosition(Position):
    """The log: the last entry's time and its bigint id."""

    t: Moment
    i: int = Field(ge=1, lt=2**63)


class SortedPosition(Position):
    """The campaign list: the sort value, the id, and the sort the cursor was made for."""

    v: Text
    i: UUID
    s: Text
    o: Literal["asc", "desc"]

    def moment(self) -> Any:
        """The sort value as the moment a time sort needs."""
        try:
            return _MOMENT.validate_python(self.v)
        except ValidationError as exc:
            raise invalid("the cursor's position is not a time") from exc


_MOMENT: TypeAdapter[Any] = TypeAdapter(Moment)
P = TypeVar("P", bound=Position)


def encode(**values: Any) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, shape: type[P]) -> P:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return shape.model_validate(raw)
    # ValidationError and UnicodeDecodeError are ValueErrors; binascii.Error is one as well.
    except (binascii.Error, ValueError, TypeError) as exc:
        raise invalid("the cursor is not one this API returned for this query") from exc


def created_position(cursor: str | None) -> tuple[datetime | None, UUID | None]:
    """Where a list in (created_at, id) order continues: the last item's pair, or two NULLs
    for the first page (the lists' SQL reads a NULL position as "from the start")."""
    if not cursor:
        return (None, None)
    position = decode(cursor, CreatedPosition)
    return (position.c, position.i)


def created_cursor(created_at: datetime, item_id: UUID) -> str:
    """The cursor after an item of such a list: `created_position` reads it back."""
    return encode(c=created_at.isoformat(), i=item_id)


def invalid(detail: str) -> Problem:
    return Problem(400, "invalid_cursor", "Invalid cursor", detail)
