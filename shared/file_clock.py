"""A clock the tests set from outside the service processes: `DRIPLINE_CLOCK_FILE` names a
file holding an ISO-8601 instant, and every service of a stack reads "now" from it. Without the
file, or while it is empty, time is the system's. Drip schedules are tested by moving this clock,
never by sleeping."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path


class FileClock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int, int] | None = None
        self._at: datetime | None = None

    def now(self) -> datetime:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return datetime.now(UTC)
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)  # a rename gives a new inode
        if seen != self._seen:
            text = self._path.read_text().strip()
            self._at = datetime.fromisoformat(text) if text else None
            self._seen = seen
        return self._at if self._at is not None else datetime.now(UTC)

    @staticmethod
    def set(path: Path, at: datetime) -> None:
        """Move the clock of every service reading `path` (written whole, then renamed)."""
        partial = path.with_suffix(".partial")
        partial.write_text(at.isoformat())
        partial.replace(path)
