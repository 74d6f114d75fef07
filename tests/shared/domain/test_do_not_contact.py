"""The do-not-contact identifiers, the opt-out phrase matching and the send-time refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from shared.domain import reach
from shared.domain.do_not_contact import (
    DEFAULT_OPT_OUT_PHRASES,
    InvalidIdentifier,
    Kind,
    check_phrases,
    contact_keys,
    fold,
    normalise,
    opts_out,
)

CONTACT = UUID("7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918")


@pytest.mark.parametrize(
    ("kind", "value", "stored"),
    [
        (Kind.USERNAME, "@Alice_Smith", "alice_smith"),
        (Kind.USERNAME, "  bob1 ", "bob1"),
        (Kind.PHONE, "+49 (151) 234-5678", "491512345678"),
        (Kind.PHONE, "491512345678", "491512345678"),
        (Kind.TELEGRAM_USER_ID, "0042", "42"),
        (Kind.TELEGRAM_USER_ID, "9223372036854775807", "9223372036854775807"),
        (Kind.CONTACT, str(CONTACT).upper(), str(CONTACT)),
    ],
)
def test_identifiers_are_stored_normalised(kind: Kind, value: str, stored: str) -> None:
    assert normalise(kind, value) == stored


@pytest.mark.parametrize(
    ("kind", "value", "says"),
    [
        (Kind.USERNAME, "ab", "4-32 letters"),
        (Kind.USERNAME, "1alice", "starts with a letter"),
        (Kind.USERNAME, "al ice", "4-32 letters"),
        (Kind.PHONE, "12345", "country code"),
        (Kind.PHONE, "+0049151234567", "country code"),
        (Kind.PHONE, "call me", "country code"),
        (Kind.TELEGRAM_USER_ID, "0", "positive 64-bit"),
        (Kind.TELEGRAM_USER_ID, "-5", "positive 64-bit"),
        (Kind.TELEGRAM_USER_ID, "9223372036854775808", "positive 64-bit"),
        (Kind.TELEGRAM_USER_ID, "١٢٣", "positive 64-bit"),  # Arabic-Indic digits
        (Kind.CONTACT, "not-a-uuid", "UUID"),
    ],
)
def test_bad_identifiers_are_refused_with_what_is_expected(
    kind: Kind, value: str, says: str
) -> None:
    with pytest.raises(InvalidIdentifier, match=says):
        normalise(kind, value)


def test_a_contacts_keys_are_normalised_like_the_entries() -> None:
    keys = contact_keys(
        contact_id=CONTACT, telegram_user_id=42, username="@Alice", phone="+49 151 2345678"
    )
    assert keys == [
        (Kind.CONTACT, str(CONTACT)),
        (Kind.TELEGRAM_USER_ID, "42"),
        (Kind.USERNAME, "alice"),
        (Kind.PHONE, "491512345678"),
    ]
    for kind, value in keys:
        assert normalise(kind, value) == value
    assert contact_keys(contact_id=None, telegram_user_id=None, username=None, phone="") == []


@pytest.mark.parametrize(
    ("reply", "opted_out"),
    [
        ("STOP", True),
        ("stop.", True),
        ("Please stop messaging me", True),
        ("Unsubscribe!!", True),
        ("opt out", True),
        ("Opt-out, thanks", True),
        ("OPT   OUT", True),
        ("Стоп", True),
        ("ОТПИСАТЬСЯ", True),
        ("отпишись пожалуйста", True),
        ("Por favor, dame de BAJA", True),
        ("bája", True),  # accents do not matter
        ("parar ya", True),
        ("Detén... no, DETENER", True),
        ("stopwatch for sale", False),  # whole words only
        ("nonstop", False),
        ("unsubscribed? no, I love it", False),
        ("opt in", False),
        ("out of office, opt later", False),  # the phrase's words in order, adjacent
        ("Thanks, tell me more", False),
        ("", False),
        ("стопка книг", False),
        ("bajar", False),
    ],
)
def test_opt_out_matches_whole_words_in_any_case_and_accent(reply: str, opted_out: bool) -> None:
    assert opts_out(reply, DEFAULT_OPT_OUT_PHRASES) is opted_out


@pytest.mark.parametrize(
    ("reply", "phrases", "opted_out"),
    [
        ("Arrêtez", ["arretez"], True),
        ("arretez", ["Arrêtez"], True),
        ("stop", ["halt"], False),  # an organization's own phrases replace the defaults
        ("no more please", ["no more"], True),
        ("anything", [], False),
        ("ёлки", ["елки"], True),  # yo folds with ye
    ],
)
def test_an_organizations_own_phrases(reply: str, phrases: list[str], opted_out: bool) -> None:
    assert opts_out(reply, phrases) is opted_out


def test_fold_drops_case_and_accents() -> None:
    assert fold("ÁÉÍÓÚ ñ Straße") == "aeiou n strasse"


@pytest.mark.parametrize(
    ("phrases", "error"),
    [
        (["ok", ""], "1-100 characters"),
        (["x" * 101], "1-100 characters"),
        (["!!!"], "no word"),
        (["stop"] * 101, "at most 100"),
    ],
)
def test_bad_phrases_are_refused(phrases: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_phrases(phrases)


def test_phrases_are_trimmed() -> None:
    assert check_phrases(["  stop ", "opt out"]) == ["stop", "opt out"]


@pytest.mark.parametrize(
    ("contact_deleted", "do_not_contact", "account_deleted", "expected"),
    [
        (False, False, False, None),
        (True, False, False, reach.Skip(reach.SkipReason.CONTACT_DELETED, ends=True)),
        (False, True, False, reach.Skip(reach.SkipReason.DO_NOT_CONTACT, ends=True)),
        (False, True, True, reach.Skip(reach.SkipReason.DO_NOT_CONTACT, ends=True)),
        (True, True, True, reach.Skip(reach.SkipReason.CONTACT_DELETED, ends=True)),
        (False, False, True, reach.Skip(reach.SkipReason.ACCOUNT_DELETED, ends=False)),
    ],
)
def test_reach_refuses_a_listed_contact_whichever_account(
    contact_deleted: bool, do_not_contact: bool, account_deleted: bool, expected: reach.Skip | None
) -> None:
    assert (
        reach.refusal(
            contact_deleted=contact_deleted,
            do_not_contact=do_not_contact,
            account_deleted=account_deleted,
        )
        == expected
    )


@pytest.mark.parametrize(
    ("contact_deleted", "do_not_contact", "recent", "account_deleted", "expected"),
    [
        (False, False, True, False, reach.SkipReason.RECENTLY_CONTACTED),
        (False, False, True, True, reach.SkipReason.RECENTLY_CONTACTED),
        (False, True, True, False, reach.SkipReason.DO_NOT_CONTACT),
        (True, False, True, False, reach.SkipReason.CONTACT_DELETED),
        (False, False, False, True, reach.SkipReason.ACCOUNT_DELETED),
    ],
)
def test_reach_ends_a_recently_contacted_persons_execution(
    contact_deleted: bool,
    do_not_contact: bool,
    recent: bool,
    account_deleted: bool,
    expected: reach.SkipReason,
) -> None:
    skip = reach.refusal(
        contact_deleted=contact_deleted,
        do_not_contact=do_not_contact,
        account_deleted=account_deleted,
        recently_contacted=recent,
    )
    assert skip is not None
    assert (skip.reason, skip.ends) == (expected, expected is not reach.SkipReason.ACCOUNT_DELETED)


NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "last_elsewhere", "messaged_here", "expected"),
    [
        (None, NOW - timedelta(hours=1), False, False),  # the setting is off
        (30, None, False, False),  # nobody else ever messaged them
        (30, NOW - timedelta(days=29, hours=23), False, True),
        (30, NOW - timedelta(days=30), False, False),  # exactly the period: may again
        (30, NOW - timedelta(days=31), False, False),
        (30, NOW - timedelta(hours=1), True, False),  # a follow-up of this execution
        (1, NOW - timedelta(hours=23), False, True),
    ],
)
def test_recently_contacted_is_the_first_send_within_the_period(
    days: int | None, last_elsewhere: datetime | None, messaged_here: bool, expected: bool
) -> None:
    assert (
        reach.recently_contacted(
            recontact_after_days=days,
            last_messaged_elsewhere=last_elsewhere,
            messaged_here=messaged_here,
            now=NOW,
        )
        is expected
    )
