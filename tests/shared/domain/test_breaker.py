"""The fleet circuit breaker's decision (issue 14, item 4), table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.accounts import AccountHealth as H
from shared.domain.breaker import BreakerPolicy, FleetAccount, decide, in_trouble, policy_of

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def fleet(*states: H, recent: int = 0, old: int = 0) -> list[FleetAccount]:
    """Accounts in these states, plus `recent` active ones that were in trouble 30 minutes ago
    and `old` active ones that were in trouble 2 hours ago."""
    return (
        [FleetAccount(s) for s in states]
        + [FleetAccount(H.ACTIVE, NOW - 30 * MIN)] * recent
        + [FleetAccount(H.ACTIVE, NOW - 120 * MIN)] * old
    )


DECISIONS = [
    # (accounts, paused before, policy) -> (paused, troubled, sending)
    ("no accounts", [], False, BreakerPolicy(), (False, 0, 0)),
    ("all healthy", fleet(H.ACTIVE, H.WARMING, H.ACTIVE), False, BreakerPolicy(), (False, 0, 3)),
    ("one of one limited: not a fleet", fleet(H.LIMITED), False, BreakerPolicy(), (False, 1, 1)),
    ("2 of 5: below 60%", fleet(H.LIMITED, H.FROZEN, *[H.ACTIVE] * 3), False, BreakerPolicy(),
     (False, 2, 5)),
    ("3 of 5: exactly 60% trips", fleet(H.LIMITED, H.FROZEN, H.COOLDOWN, H.ACTIVE, H.ACTIVE),
     False, BreakerPolicy(), (True, 3, 5)),
    ("2 of 2 cooling down", fleet(H.COOLDOWN, H.COOLDOWN), False, BreakerPolicy(), (True, 2, 2)),
    ("trouble within the hour counts", fleet(H.LIMITED, H.ACTIVE, recent=2), False,
     BreakerPolicy(), (True, 3, 4)),
    ("trouble two hours ago does not", fleet(H.LIMITED, H.ACTIVE, old=2), False,
     BreakerPolicy(), (False, 1, 4)),
    ("dead accounts do not count", fleet(H.LIMITED, H.FROZEN, H.ACTIVE, H.BANNED, H.AUTH_LOST,
     H.SESSION_CONFLICT), False, BreakerPolicy(), (True, 2, 3)),
    ("disconnected accounts count as sending", fleet(H.LIMITED, H.FROZEN, H.DISCONNECTED,
     H.DISCONNECTED), False, BreakerPolicy(), (False, 2, 4)),
    ("paused stays paused above share - hysteresis (4 of 7 = 57%)",
     fleet(*[H.LIMITED] * 4, *[H.ACTIVE] * 3), True, BreakerPolicy(), (True, 4, 7)),
    ("not paused does not trip at 57%", fleet(*[H.LIMITED] * 4, *[H.ACTIVE] * 3), False,
     BreakerPolicy(), (False, 4, 7)),
    ("paused resumes below share - hysteresis (2 of 5 = 40%)",
     fleet(H.LIMITED, H.LIMITED, *[H.ACTIVE] * 3), True, BreakerPolicy(), (False, 2, 5)),
    ("a lower share from the organization", fleet(H.LIMITED, H.ACTIVE, H.ACTIVE), False,
     BreakerPolicy(share=0.3, min_accounts=1), (True, 1, 3)),
    ("min_accounts 3 needs three in trouble", fleet(H.LIMITED, H.LIMITED), False,
     BreakerPolicy(min_accounts=3), (False, 2, 2)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("accounts", "paused", "policy", "expected"),
    [pytest.param(a, p, pol, e, id=name) for name, a, p, pol, e in DECISIONS],
)
def test_the_breaker_decides(
    accounts: list[FleetAccount],
    paused: bool,
    policy: BreakerPolicy,
    expected: tuple[bool, int, int],
) -> None:
    decision = decide(accounts, NOW, paused=paused, policy=policy)
    assert (decision.paused, decision.troubled, decision.sending) == expected
    if decision.paused:
        assert decision.reason is not None
        assert f"{decision.troubled} of {decision.sending}" in decision.reason
    else:
        assert decision.reason is None


TROUBLE = [
    (FleetAccount(H.LIMITED), True),
    (FleetAccount(H.FROZEN), True),
    (FleetAccount(H.COOLDOWN), True),
    (FleetAccount(H.ACTIVE), False),
    (FleetAccount(H.DISCONNECTED), False),
    (FleetAccount(H.ACTIVE, NOW - 59 * MIN), True),
    (FleetAccount(H.ACTIVE, NOW - 60 * MIN), False),
]


@pytest.mark.parametrize(("account", "expected"), TROUBLE)
def test_an_account_is_in_trouble(account: FleetAccount, expected: bool) -> None:
    assert in_trouble(account, NOW) is expected


@pytest.mark.parametrize(
    "fields",
    [{"share": 0}, {"share": 1.5}, {"min_accounts": 0}, {"hysteresis": 0.7}, {"hysteresis": -1}],
)
def test_a_policy_out_of_range_is_refused(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        BreakerPolicy(**fields)  # type: ignore[arg-type]


POLICIES = [
    # (an organization's settings) -> its policy
    ("personal mode, or no settings", None, BreakerPolicy()),
    ("settings without the breaker", {"recontact_after_days": 30}, BreakerPolicy()),
    ("the share alone", {"fleet_breaker": {"share": 0.8}}, BreakerPolicy(share=0.8)),
    ("all three", {"fleet_breaker": {"share": 0.5, "min_accounts": 3, "hysteresis": 0.2}},
     BreakerPolicy(share=0.5, min_accounts=3, hysteresis=0.2)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "expected"), [pytest.param(s, e, id=name) for name, s, e in POLICIES]
)
def test_an_organizations_policy_comes_from_its_settings(
    settings: dict[str, object] | None, expected: BreakerPolicy
) -> None:
    assert policy_of(settings) == expected
