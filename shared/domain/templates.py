"""Message templates: text with placeholders such as {first_name}.

Rendering is deliberately not `str.format`: a placeholder is a bare name looked up in a flat
mapping, so a template can reach no attribute, index, conversion or format spec (a format spec
like {name:>999999999} alone would be a memory bomb). Unknown names render as empty text.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_FORMATTER = string.Formatter()


def template_problems(text: str) -> list[str]:
    """Why this text is not a valid template; empty when it is."""
    try:
        parts = list(_FORMATTER.parse(text))
    except ValueError as exc:
        return [f"malformed template: {exc} (write {{{{ and }}}} for literal braces)"]
    problems = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not _NAME.fullmatch(name):
            problems.append(f"placeholder {{{name}}} must be a plain name such as {{first_name}}")
        elif spec or conversion:
            problems.append(f"placeholder {{{name}}} may not carry a conversion or format spec")
    return problems


def render(text: str, values: Mapping[str, object]) -> str:
    pieces: list[str] = []
    for literal, name, _, _ in _FORMATTER.parse(text):
        pieces.append(literal)
        if name is not None:
            value = values.get(name)
            pieces.append("" if value is None else str(value))
    return "".join(pieces)


def placeholders(text: str) -> list[str]:
    return [name for _, name, _, _ in _FORMATTER.parse(text) if name]
