"""Message templates: text with placeholders, fallbacks and spintax.

  {first_name}            a variable: the contact's value, empty text when it has none
  {first_name|there}      a variable with a fallback, used when the value is missing or blank
  {Hi|Hello|Hey}          spintax: one alternative, chosen per contact and step
  {{ and }}               literal braces

A group whose first part is a known variable name (`KNOWN_VARIABLES`, or `fields.<name>` for a
custom field) is a variable; any other group with two or more parts is spintax. A group with
one part is a variable and must be a plain name (custom fields may be named bare, as before).
Groups do not nest: spintax alternatives are plain text.

Rendering is deliberately not `str.format`: the text is parsed here and the pieces are
concatenated, so a template can reach no attribute, index, conversion or format spec (a format
spec like {name:>999999999} alone would be a memory bomb), and a value that looks like a
template is never expanded.

The spintax choice is a stable hash of a seed (the execution's key and the step's node id) and
the group's position, so the same contact at the same step always gets the same text: a resend
after a crash sends what the first attempt would have sent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

TEXT_LIMIT = 4096  # Telegram's limit for a message's text
CAPTION_LIMIT = 1024  # and for a media caption

KNOWN_VARIABLES = frozenset({"first_name", "last_name", "username", "telegram_username", "phone"})
CUSTOM_PREFIX = "fields."

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class TemplateProblem:
    code: str  # unbalanced_braces | empty_alternative | invalid_template
    message: str


@dataclass(frozen=True)
class Literal:
    text: str


@dataclass(frozen=True)
class Variable:
    name: str  # the key in the values mapping (a custom field without its prefix)
    fallback: str | None = None


@dataclass(frozen=True)
class Spin:
    alternatives: tuple[str, ...]


Piece = Literal | Variable | Spin


def _is_variable(part: str) -> bool:
    if part in KNOWN_VARIABLES:
        return True
    return part.startswith(CUSTOM_PREFIX) and bool(_NAME.fullmatch(part[len(CUSTOM_PREFIX) :]))


def _group(body: str, problems: list[TemplateProblem]) -> Piece | None:
    parts = body.split("|")
    if len(parts) == 1:
        name = body.removeprefix(CUSTOM_PREFIX)
        if not body:
            problems.append(TemplateProblem("invalid_template", "{} names no variable"))
        elif not _NAME.fullmatch(name):
            problems.append(
                TemplateProblem(
                    "invalid_template",
                    f"placeholder {{{body}}} must be a plain name such as {{first_name}}, "
                    "or two or more alternatives such as {Hi|Hello}",
                )
            )
        else:
            return Variable(name)
        return None
    if any(part == "" for part in parts):
        problems.append(
            TemplateProblem("empty_alternative", f"{{{body}}} has an empty alternative")
        )
        return None
    if _is_variable(parts[0]):
        if len(parts) > 2:
            problems.append(
                TemplateProblem(
                    "invalid_template", f"variable {{{parts[0]}}} takes one fallback, not more"
                )
            )
            return None
        return Variable(parts[0].removeprefix(CUSTOM_PREFIX), parts[1])
    return Spin(tuple(parts))


def parse(text: str) -> tuple[list[Piece], list[TemplateProblem]]:
    """The template's pieces, and every problem found (the pieces are meaningful only without)."""
    pieces: list[Piece] = []
    problems: list[TemplateProblem] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
        elif char == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
        elif char == "}":
            problems.append(
                TemplateProblem(
                    "unbalanced_braces",
                    f"a }} at character {i + 1} closes nothing (write }}}} for a literal brace)",
                )
            )
            i += 1
        elif char == "{":
            end = i + 1
            while end < n and text[end] not in "{}":
                end += 1
            if end >= n or text[end] == "{":
                problems.append(
                    TemplateProblem(
                        "unbalanced_braces",
                        f"the {{ at character {i + 1} is not closed before "
                        + ("the end" if end >= n else "another {")
                        + " (groups do not nest; write {{ for a literal brace)",
                    )
                )
                i = end
                continue
            if literal:
                pieces.append(Literal("".join(literal)))
                literal = []
            piece = _group(text[i + 1 : end], problems)
            if piece is not None:
                pieces.append(piece)
            i = end + 1
        else:
            literal.append(char)
            i += 1
    if literal:
        pieces.append(Literal("".join(literal)))
    return pieces, problems


def template_problems(text: str) -> list[TemplateProblem]:
    """Why this text is not a valid template; empty when it is."""
    return parse(text)[1]


def choose(alternatives: tuple[str, ...], seed: str, position: int) -> str:
    """One alternative, stable for the seed and the group's position in the template."""
    digest = hashlib.sha256(f"{seed}:{position}".encode()).digest()
    return alternatives[int.from_bytes(digest[:8], "big") % len(alternatives)]


def render(text: str, values: Mapping[str, object], seed: str = "") -> str:
    """The text for one contact: values looked up by name, spintax chosen by `seed` (the
    execution's key and the step's node id). Invalid groups render as nothing; templates are
    validated when the flow is saved."""
    pieces, _ = parse(text)
    out: list[str] = []
    for position, piece in enumerate(pieces):
        match piece:
            case Literal(text=literal):
                out.append(literal)
            case Variable(name=name, fallback=fallback):
                value = values.get(name)
                shown = "" if value is None else str(value)
                if not shown.strip() and fallback is not None:
                    shown = fallback
                out.append(shown)
            case Spin(alternatives=alternatives):
                out.append(choose(alternatives, seed, position))
    return "".join(out)


def longest_length(text: str) -> int:
    """The template's longest rendering as far as validation can know it: each spintax group at
    its longest alternative, each variable at its fallback's length (a value is unknown until
    send time, where the rendered text is measured again)."""
    pieces, _ = parse(text)
    total = 0
    for piece in pieces:
        match piece:
            case Literal(text=literal):
                total += len(literal)
            case Variable(fallback=fallback):
                total += len(fallback or "")
            case Spin(alternatives=alternatives):
                total += max(len(a) for a in alternatives)
    return total


def limit_problem(text: str, *, caption: bool = False) -> TemplateProblem | None:
    """Telegram's limit for the template's longest rendering: text, or a media caption."""
    limit = CAPTION_LIMIT if caption else TEXT_LIMIT
    length = longest_length(text)
    if length <= limit:
        return None
    kind = "caption" if caption else "text"
    return TemplateProblem(
        f"{kind}_too_long",
        f"the {kind} can render to {length} characters; Telegram allows {limit}",
    )


def placeholders(text: str) -> list[str]:
    return [piece.name for piece in parse(text)[0] if isinstance(piece, Variable)]
