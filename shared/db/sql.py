"""Named SQL blocks kept in plain .sql files beside the code that owns the tables.

A file holds blocks introduced by `-- name: <query_name>`; the comment lines that follow the name
document the query. Files are read once, when the owning module is imported.
"""

from __future__ import annotations

import re
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


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
            blocks[match.group(1)] = body
        return cls(blocks, path)

    def __getitem__(self, name: str) -> str:
        return self._blocks[name]

    def __contains__(self, name: object) -> bool:
        return name in self._blocks

    @property
    def names(self) -> list[str]:
        return list(self._blocks)
