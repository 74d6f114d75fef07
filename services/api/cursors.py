"""Opaque keyset cursors: the last row's sort value and id, base64 JSON."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from services.api.problems import Problem


def encode(**values: Any) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, *required: str) -> dict[str, Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict) or any(key not in raw for key in required):
            raise ValueError("missing keys")
        return raw
    except (binascii.Error, ValueError, TypeError) as exc:
        raise Problem(
            422,
            "invalid_cursor",
            "Invalid cursor",
            "the cursor is not one this API returned for this query",
        ) from exc
