"""When an account may send next: cooldowns, a jittered minimum gap between sends, and a daily
budget of new peers (TELEGRAM.md, "Pacing"). Pure; the sender supplies the account's numbers.

Conservative defaults: Telegram publishes no limits for user accounts, and new accounts hit
PEER_FLOOD after a handful of cold messages a day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from shared.domain.accounts import NEEDS_A_PERSON, AccountHealth


@dataclass(frozen=True)
class Pacing:
    min_gap_s: float = 45.0
    jitter_s: float = 30.0
    daily_new_peers: int = 20
    flood_margin_s: float = 5.0  # added to every flood wait
    limited_retry_s: float = 3600.0  # how long a limited account's new-peer sends wait
    warmup_start: int = 5  # new peers on a warming account's first day
    warmup_step: int = 5  # more each day after, up to daily_new_peers
    flood_cut: float = 0.5  # the day's budget is multiplied by this after a flood error

    def daily_budget(self, pace: AccountPace) -> int:
        """New peers allowed today: ramping while warming, cut after a flood error today."""
        budget = self.daily_new_peers
        if pace.health is AccountHealth.WARMING:
            budget = min(budget, self.warmup_start + self.warmup_step * pace.warming_days)
        if pace.flood_today:
            budget = int(budget * self.flood_cut)
        return budget

    def warmed_up(self, warming_days: int) -> bool:
        return self.warmup_start + self.warmup_step * warming_days >= self.daily_new_peers

    @classmethod
    def from_settings(cls, raw: Mapping[str, Any], daily_quota: int | None = None) -> Pacing:
        """The account's own settings over the defaults; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        if daily_quota is not None and "daily_new_peers" not in values:
            values["daily_new_peers"] = daily_quota
        return cls(**values)


@dataclass(frozen=True)
class AccountPace:
    health: AccountHealth
    cooldown_until: datetime | None
    last_send_at: datetime | None
    new_peers_today: int
    warming_days: int = 0  # whole days since the account started warming
    flood_today: bool = False  # a flood error (wait, peer flood) happened today


class CannotSend(Exception):
    """The account cannot send at all (auth lost, session conflict, banned): a person must
    act."""


def jitter(key: str, spread_s: float) -> float:
    digest = hashlib.sha256(key.encode()).digest()
    return spread_s * int.from_bytes(digest[:4], "big") / 2**32


def next_send_at(
    pacing: Pacing,
    pace: AccountPace,
    now: datetime,
    *,
    new_peer: bool,
    key: str,
    reserved: bool = False,
) -> datetime:
    """`now` if this send may go now, otherwise the earliest moment it may.

    A `reserved` send is one whose record was claimed before (its gap and its share of the
    budget were reserved then) and whose answer never came back, after a crash or a stall: it
    is sent again with the same random_id to learn what became of it. Only the account's health
    holds it back; the gap and the budget would charge it twice and put a message Telegram may
    already hold off until tomorrow."""
    if pace.health in NEEDS_A_PERSON:
        raise CannotSend(f"the account is {pace.health.value}")
    moment = now
    if pace.cooldown_until is not None and pace.cooldown_until > moment:
        moment = pace.cooldown_until
    if pace.health is AccountHealth.DISCONNECTED:
        moment = max(moment, now + timedelta(seconds=pacing.limited_retry_s / 12))
    if pace.health is AccountHealth.FROZEN:  # no sends at all, known peers included
        moment = max(moment, now + timedelta(seconds=pacing.limited_retry_s))
    if pace.health is AccountHealth.LIMITED and new_peer:
        moment = max(moment, now + timedelta(seconds=pacing.limited_retry_s))
    if reserved:
        return moment
    if pace.last_send_at is not None:
        gap = pacing.min_gap_s + jitter(key, pacing.jitter_s)
        moment = max(moment, pace.last_send_at + timedelta(seconds=gap))
    if new_peer and pace.new_peers_today >= pacing.daily_budget(pace):
        tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        moment = max(moment, tomorrow)
    return moment
