"""The pure rules of account health (issue 14, item 4): @SpamBot's answers, a freeze in
help.getAppConfig, the recheck backoff of a limited or frozen account, the reconnect backoff of
a disconnected one, and what a dropped connection changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.accounts import AccountHealth as H
from shared.domain.accounts import (
    Freeze,
    SpamBotVerdict,
    UnreadableSpamBotAnswer,
    after_drop,
    read_freeze,
    read_spambot,
    recheck_at,
    recheck_delay,
    reconnect_delay,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
H1 = timedelta(hours=1)

_SORRY = (
    "I'm very sorry that you had to contact me. Unfortunately, some actions can trigger a harsh "
    "response from our anti-spam systems. If you think this is the case with you, you can submit "
    "a complaint to our moderators.\n\nWhile the account is limited, you will not be able to "
    "send messages to people who do not have your number in their phone contacts or add them to "
    "groups and channels. Of course, when people contact you first, you can always reply to them."
)

SPAMBOT = [
    # answer -> verdict
    (
        "Good news, no limits are currently applied to your account. You're free as a bird!",
        SpamBotVerdict(limited=False),
    ),
    ("You're free as a bird!", SpamBotVerdict(limited=False)),
    (_SORRY, SpamBotVerdict(limited=True)),
    (
        _SORRY + "\n\nYour account will be automatically released on 6 Jun 2026, 14:30 UTC.",
        SpamBotVerdict(True, datetime(2026, 6, 6, 14, 30, tzinfo=UTC)),
    ),
    (
        "Unfortunately, your account is now limited until 12 March 2027, 09:05 UTC. "
        "You will not be able to send messages to people who do not have your number.",
        SpamBotVerdict(True, datetime(2027, 3, 12, 9, 5, tzinfo=UTC)),
    ),
    (
        "Your account was limited by our anti-spam systems. The limit will be lifted "
        "on 1 Jan 2027 at 00:00 UTC.",
        SpamBotVerdict(True, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
    ),
]


@pytest.mark.parametrize(("text", "verdict"), SPAMBOT)
def test_spambots_answers_are_read(text: str, verdict: SpamBotVerdict) -> None:
    assert read_spambot(text) == verdict


@pytest.mark.parametrize(
    "text",
    ["", "Hello! Please choose an option below.", "Your account will be released on 6 Foo 2026"],
)
def test_an_answer_that_says_neither_is_refused_not_guessed(text: str) -> None:
    with pytest.raises(UnreadableSpamBotAnswer, match="not understood"):
        read_spambot(text)


@pytest.mark.parametrize(
    ("verdict", "limited"),
    [
        (SpamBotVerdict(limited=False), False),
        (SpamBotVerdict(limited=True), True),
        (SpamBotVerdict(True, NOW + H1), True),
        (SpamBotVerdict(True, NOW), False),  # the stated date has come: free
        (SpamBotVerdict(True, NOW - H1), False),
    ],
)
def test_a_stated_release_date_that_passed_is_free(verdict: SpamBotVerdict, limited: bool) -> None:
    assert verdict.limited_at(NOW) is limited


FREEZES = [
    ({"message_length_max": 4096}, None),
    (
        {
            "freeze_since_date": 1780000000,
            "freeze_until_date": 1790000000.0,
            "freeze_appeal_url": "https://t.me/spambot",
        },
        Freeze(
            datetime.fromtimestamp(1780000000, UTC),
            datetime.fromtimestamp(1790000000, UTC),
            "https://t.me/spambot",
        ),
    ),
    (
        {"freeze_since_date": 1780000000},
        Freeze(datetime.fromtimestamp(1780000000, UTC), None, None),
    ),
    (
        {"freeze_until_date": 1790000000, "freeze_appeal_url": ""},
        Freeze(None, datetime.fromtimestamp(1790000000, UTC), None),
    ),
]


@pytest.mark.parametrize(("config", "freeze"), FREEZES)
def test_a_freeze_is_read_from_the_app_config(
    config: dict[str, object], freeze: Freeze | None
) -> None:
    assert read_freeze(config) == freeze


@pytest.mark.parametrize(
    ("freeze", "frozen"),
    [
        (Freeze(NOW - H1, NOW + H1, None), True),
        (Freeze(NOW - H1, None, None), True),  # no end given: frozen until lifted
        (Freeze(NOW - 2 * H1, NOW - H1, None), False),
    ],
)
def test_a_freeze_ends_at_its_until_date(freeze: Freeze, frozen: bool) -> None:
    assert freeze.frozen_at(NOW) is frozen


@pytest.mark.parametrize(
    ("checks", "delay"),
    [(0, H1), (1, 2 * H1), (2, 4 * H1), (3, 8 * H1), (4, 16 * H1), (5, 24 * H1), (40, 24 * H1)],
)
def test_a_limited_account_is_asked_again_on_a_doubling_backoff_capped_at_a_day(
    checks: int, delay: timedelta
) -> None:
    assert recheck_delay(checks) == delay


@pytest.mark.parametrize(
    ("checks", "until", "moment"),
    [
        (0, None, NOW + H1),
        (3, None, NOW + 8 * H1),
        (3, NOW + 2 * H1, NOW + 2 * H1),  # the stated date comes first: asked then
        (0, NOW + 5 * H1, NOW + H1),
        (0, NOW - H1, NOW + H1),  # a date already past does not move it into the past
    ],
)
def test_the_next_check_comes_at_the_stated_date_when_that_is_sooner(
    checks: int, until: datetime | None, moment: datetime
) -> None:
    assert recheck_at(checks, NOW, until) == moment


@pytest.mark.parametrize(
    ("failures", "rand", "seconds"),
    [
        (0, 0.0, 2.5),
        (0, 0.999999, 5.0),
        (1, 0.0, 5.0),
        (2, 0.5, 15.0),
        (5, 0.0, 80.0),
        (8, 0.0, 450.0),
        (9, 0.0, 450.0),  # 5 * 2**9 = 2560 s, capped at 900 s
        (100, 1.0, 900.0),
        (0, -3.0, 2.5),  # an out-of-range jitter is clamped
    ],
)
def test_reconnects_back_off_exponentially_with_jitter(
    failures: int, rand: float, seconds: float
) -> None:
    assert reconnect_delay(failures, rand).total_seconds() == pytest.approx(seconds, rel=1e-5)


@pytest.mark.parametrize(
    ("health", "after"),
    [
        (H.ACTIVE, H.DISCONNECTED),
        (H.WARMING, H.DISCONNECTED),
        (H.LIMITED, None),  # stays limited: only SpamBot lifts it
        (H.FROZEN, None),
        (H.COOLDOWN, None),
        (H.DISCONNECTED, None),
        (H.AUTH_LOST, None),
        (H.SESSION_CONFLICT, None),
        (H.BANNED, None),
    ],
)
def test_a_dropped_connection_disconnects_only_a_sending_account(
    health: H, after: H | None
) -> None:
    assert after_drop(health) is after
