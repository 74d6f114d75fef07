"""Pacing: cooldowns, gaps with jitter, the daily budget of new peers, health."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.accounts import AccountHealth as H
from shared.domain.pacing import AccountPace, CannotSend, Pacing, jitter, next_send_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
PACING = Pacing(min_gap_s=60, jitter_s=0, daily_new_peers=10, limited_retry_s=3600)

CASES = [
    # pace, new peer -> the moment the send may go
    (AccountPace(H.ACTIVE, None, None, 0), True, NOW),
    (AccountPace(H.ACTIVE, None, NOW - 61 * S, 0), True, NOW),
    (AccountPace(H.ACTIVE, None, NOW - 20 * S, 0), True, NOW + 40 * S),
    (AccountPace(H.WARMING, None, None, 9, warming_days=1), True, NOW),
    (AccountPace(H.ACTIVE, None, None, 10), True, datetime(2026, 6, 2, tzinfo=UTC)),
    (AccountPace(H.ACTIVE, None, None, 10), False, NOW),  # known peers are outside the budget
    (AccountPace(H.COOLDOWN, NOW + 300 * S, None, 0), False, NOW + 300 * S),
    (AccountPace(H.ACTIVE, NOW - S, None, 0), False, NOW),  # a cooldown in the past
    (AccountPace(H.LIMITED, None, None, 0), True, NOW + 3600 * S),
    (AccountPace(H.LIMITED, None, None, 0), False, NOW),
    (AccountPace(H.DISCONNECTED, None, None, 0), False, NOW + 300 * S),
    (AccountPace(H.FROZEN, None, None, 0), True, NOW + 3600 * S),
    (AccountPace(H.FROZEN, None, None, 0), False, NOW + 3600 * S),  # known peers wait too
]


@pytest.mark.parametrize(("pace", "new_peer", "moment"), CASES)
def test_next_send_at(pace: AccountPace, new_peer: bool, moment: datetime) -> None:
    assert next_send_at(PACING, pace, NOW, new_peer=new_peer, key="k") == moment


RESERVED_CASES = [
    # a send claimed before (gap and budget reserved then), sent again to learn its fate:
    # pace, new peer -> the moment it may go
    (AccountPace(H.ACTIVE, None, NOW - 20 * S, 0), True, NOW),  # no second gap
    (AccountPace(H.ACTIVE, None, None, 10), True, NOW),  # no second charge to the budget
    (AccountPace(H.ACTIVE, None, NOW, 10, flood_today=True), True, NOW),
    (AccountPace(H.COOLDOWN, NOW + 300 * S, None, 0), True, NOW + 300 * S),  # health still holds
    (AccountPace(H.LIMITED, None, None, 0), True, NOW + 3600 * S),
    (AccountPace(H.DISCONNECTED, None, None, 0), False, NOW + 300 * S),
    (AccountPace(H.FROZEN, None, None, 0), True, NOW + 3600 * S),
    (AccountPace(H.FROZEN, None, None, 0), False, NOW + 3600 * S),  # known peers wait too
]


@pytest.mark.parametrize(("pace", "new_peer", "moment"), RESERVED_CASES)
def test_a_reserved_send_is_held_back_only_by_health(
    pace: AccountPace, new_peer: bool, moment: datetime
) -> None:
    assert next_send_at(PACING, pace, NOW, new_peer=new_peer, key="k", reserved=True) == moment


@pytest.mark.parametrize("reserved", [False, True])
@pytest.mark.parametrize("health", [H.AUTH_LOST, H.SESSION_CONFLICT, H.BANNED])
def test_a_dead_account_cannot_send(health: H, reserved: bool) -> None:
    with pytest.raises(CannotSend):
        next_send_at(
            PACING,
            AccountPace(health, None, None, 0),
            NOW,
            new_peer=False,
            key="k",
            reserved=reserved,
        )


def test_jitter_is_deterministic_and_within_its_spread() -> None:
    values = [jitter(f"k{i}", 30) for i in range(1000)]
    assert all(0 <= v < 30 for v in values)
    assert jitter("k1", 30) == jitter("k1", 30)
    assert max(values) - min(values) > 25  # spread over the range


def test_settings_override_the_conservative_defaults() -> None:
    assert Pacing() == Pacing(min_gap_s=45, jitter_s=30, daily_new_peers=20)
    custom = Pacing.from_settings({"min_gap_s": 0, "colour": "red"}, daily_quota=7)
    assert (custom.min_gap_s, custom.daily_new_peers, custom.jitter_s) == (0, 7, 30)


@pytest.mark.parametrize(
    ("health", "days", "flood", "budget"),
    [
        (H.WARMING, 0, False, 5),
        (H.WARMING, 1, False, 8),
        (H.WARMING, 30, False, 10),
        (H.ACTIVE, 0, False, 10),
        (H.ACTIVE, 0, True, 5),
        (H.WARMING, 1, True, 4),
    ],
)
def test_the_daily_budget_ramps_while_warming_and_is_cut_after_a_flood(
    health: H, days: int, flood: bool, budget: int
) -> None:
    pacing = Pacing(daily_new_peers=10, warmup_start=5, warmup_step=3)
    pace = AccountPace(health, None, None, 0, warming_days=days, flood_today=flood)
    assert pacing.daily_budget(pace) == budget
    full = AccountPace(health, None, None, budget, warming_days=days, flood_today=flood)
    assert next_send_at(pacing, full, NOW, new_peer=True, key="k") > NOW


def test_warming_ends_when_the_ramp_reaches_the_budget() -> None:
    pacing = Pacing(daily_new_peers=20, warmup_start=5, warmup_step=5)
    assert [pacing.warmed_up(d) for d in (0, 2, 3)] == [False, False, True]
