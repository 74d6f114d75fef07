"""Named SQL blocks kept in plain .sql files beside the code that owns the tables.

A file holds blocks introduced by `-- name: <query_name>`; the comment lines that follow the name
document the query. Files are read once, when the owning module is imported.

A block may name a set of statuses the domain defines, as `{{EXECUTIONS_UNFINISHED}}`; loading
writes it as the literal list `('pending', 'running', 'waiting', 'paused')`. A literal rather
than a bound array on purpose: the planner matches a literal list against a partial index's
predicate (executions_due_idx), which `status = ANY($n)` in a generic plan cannot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum
from pathlib import Path

from shared.domain import executions

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_CONSTANT = re.compile(r"\{\{(\w+)\}\}")


def in_list(members: Iterable[StrEnum]) -> str:
    """An SQL literal list of enum values, in the enum's own order (so the text is stable)."""
    chosen = set(members)
    if not chosen:
        raise ValueError("an SQL IN list needs at least one value")
    order = list(type(next(iter(chosen))))
    return "(" + ", ".join(f"'{m.value}'" for m in sorted(chosen, key=order.index)) + ")"


# The sets a block may name; each is defined once, in shared/domain.
CONSTANTS: dict[str, str] = {
    "EXECUTIONS_UNFINISHED": in_list(executions.UNFINISHED),
    "EXECUTIONS_IN_MOTION": in_list(executions.IN_MOTION),
    "EXECUTIONS_BETWEEN_STEPS": in_list(executions.BETWEEN_STEPS),
    "EXECUTIONS_FINISHED": in_list(executions.FINISHED),
}


def _substitute(path: Path, name: str, body: str) -> str:
    def constant(match: re.Match[str]) -> str:
        if match.group(1) not in CONSTANTS:
            raise ValueError(f"{path}: query {name!r} names an unknown set {match.group(0)}")
        return CONSTANTS[match.group(1)]

    return _CONSTANT.sub(constant, body)


class Queries:
    def __init__(self, blocks: dict[str, str], path: Path | None = None) -> None:
        self._blocks = blocks
        # Where the blocks came from, so tests/shared/db/test_queries.py can find each file's owner.
        self.path = path

    @classmethod
    def load(cls, path: Path) -> Queries:
        text = path.read_text()
        names = list(_NAME.finditer(text))
        if not names:
            raise ValueError(f"{path} holds no '-- name:' blocks")
        blocks: dict[str, str] = {}
        for match, following in zip(names, [*names[1:], None], strict=True):
            end = following.start() if following is not None else len(text)
            body = text[match.end() : end].strip()
            if match.group(1) in blocks:
                raise ValueError(f"{path}: query {match.group(1)!r} is defined twice")
            blocks[match.group(1)] = _substitute(path, match.group(1), body)
        return cls(blocks, path)

    def __getitem__(self, name: str) -> str:
        return self._blocks[name]

    def __contains__(self, name: object) -> bool:
        return name in self._blocks

    @property
    def names(self) -> list[str]:
        return list(self._blocks)
