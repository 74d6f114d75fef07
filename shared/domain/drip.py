"""When a bulk action's batches are released (specs 002 and 003): schedule arithmetic only.
Pure functions.

Modes: all at once (every contact now, in chunks), scheduled (every contact at a time) and drip
(`batch_size` contacts per batch, one batch every `every`, only on allowed days and inside an
optional daily window, in a time zone, from a start time). "Repeat after" means run every: the
next batch is due `every` after the previous one was due, then moved to the next allowed moment.
A scheduler that was away does not catch up with a burst: a batch whose time has long passed is
released now and the next one `every` later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.domain.bulk_actions import CHUNK, Mode
from shared.domain.windows import Window, next_allowed, wall_clock_instant


@dataclass(frozen=True)
class Plan:
    mode: Mode
    start_at: datetime | None = None  # scheduled: required; drip: optional (now)
    batch_size: int | None = None  # drip only
    every: timedelta | None = None  # drip only
    window: Window | None = None  # drip only: days, optional daily window, time zone

    def __post_init__(self) -> None:
        if self.mode is Mode.SCHEDULED and self.start_at is None:
            raise ValueError("a scheduled action needs start_at")
        if self.mode is Mode.DRIP:
            if self.batch_size is None or self.batch_size < 1:
                raise ValueError("drip mode needs a batch size of at least 1")
            if self.every is None or self.every <= timedelta(0):
                raise ValueError("drip mode needs a positive interval")
            if self.window is None:
                raise ValueError("drip mode needs a window (at least a time zone)")

    @property
    def batch_limit(self) -> int:
        return self.batch_size if self.mode is Mode.DRIP and self.batch_size else CHUNK


def first_batch_at(plan: Plan, now: datetime) -> datetime:
    """When the first batch is due."""
    if plan.mode is Mode.ALL_AT_ONCE:
        return now
    start = plan.start_at or now
    if plan.mode is Mode.SCHEDULED:
        return start
    assert plan.window is not None
    return next_allowed(plan.window, start)


def next_batch_at(plan: Plan, due: datetime, now: datetime) -> datetime:
    """When the batch after the one that was due at `due` is due (released at `now`)."""
    if plan.mode is not Mode.DRIP:
        return now  # the next chunk follows at once
    assert plan.every is not None
    assert plan.window is not None
    following = _later(due, plan.every, plan.window.timezone)
    if following <= now:
        following = _later(now, plan.every, plan.window.timezone)  # no burst of missed batches
    return next_allowed(plan.window, following)


def _later(moment: datetime, every: timedelta, timezone: str) -> datetime:
    """Hours and minutes are elapsed time; whole days are calendar days, so "every day" keeps
    its wall-clock time across a daylight-saving change."""
    if every % timedelta(days=1):
        return moment.astimezone(UTC) + every  # in UTC: aware arithmetic is wall-clock time
    local = moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    return wall_clock_instant(local + every, timezone)
