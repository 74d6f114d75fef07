"""The do-not-contact list and opt-out by reply (issue 15, items 2 and 3). Pure.

An entry names a person by one identifier (a contact, a Telegram user id, a username or a
phone) in one list: an organization's, or a user's in personal mode. Identifiers are stored
normalised, the way `do_not_contact_listed()` (migration 0015) normalises a contact's own, so
"@Alice" and "alice", "+49 151 234" and "49151234" are one entry: usernames lower-case without
the @, phones the digits of the international number.

An opt-out is a reply that says one of the organization's opt-out phrases as whole words, in
any case and with or without accents ("STOP", "Отписаться", "baja" in "dame de baja").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from enum import StrEnum
from uuid import UUID


class Kind(StrEnum):
    CONTACT = "contact"
    TELEGRAM_USER_ID = "telegram_user_id"
    USERNAME = "username"
    PHONE = "phone"


class Reason(StrEnum):
    REQUEST = "request"  # the person asked (an opt-out reply is one)
    COMPLAINT = "complaint"
    MANUAL = "manual"
    IMPORTED = "imported"


class Source(StrEnum):
    """How an entry came in, recorded beside who added it."""

    API = "api"
    IMPORT = "import"
    KAFKA = "kafka"
    REPLY = "reply"


class InvalidIdentifier(ValueError):
    """An identifier that cannot name anyone; the message says what is expected."""


# The reason an execution stops at send time or is skipped at enrolment, and the one an
# opted-out reply completes its execution with.
DO_NOT_CONTACT = "do_not_contact"
OPTED_OUT = "opted_out"

_USERNAME = re.compile(r"[a-z][a-z0-9_]{3,31}")
_PHONE_NOISE = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"\+?[1-9][0-9]{6,14}")
MAX_USER_ID = 2**63 - 1


def normalise(kind: Kind, value: str) -> str:
    """The stored form of an identifier, or InvalidIdentifier naming what is wrong."""
    text = value.strip()
    if kind is Kind.CONTACT:
        try:
            return str(UUID(text))
        except ValueError:
            raise InvalidIdentifier("a contact is named by its id (a UUID)") from None
    if kind is Kind.TELEGRAM_USER_ID:
        if not text.isascii() or not text.isdigit() or not 0 < int(text) <= MAX_USER_ID:
            raise InvalidIdentifier("a Telegram user id is a positive 64-bit integer")
        return str(int(text))
    if kind is Kind.USERNAME:
        name = text.removeprefix("@").lower()
        if not _USERNAME.fullmatch(name):
            raise InvalidIdentifier(
                "a Telegram username has 4-32 letters, digits or underscores and starts with a "
                "letter"
            )
        return name
    digits = _PHONE_NOISE.sub("", text)
    if not _PHONE.fullmatch(digits):
        raise InvalidIdentifier(
            "a phone number is 7-15 digits in international form, with the country code, "
            "e.g. +4915123456789"
        )
    return digits.removeprefix("+")


def contact_keys(
    *,
    contact_id: UUID | None,
    telegram_user_id: int | None,
    username: str | None,
    phone: str | None,
) -> list[tuple[Kind, str]]:
    """Every entry that would name this contact, normalised as `normalise` does (and as the SQL
    function do_not_contact_listed does). An opt-out lists the person under each of these, so a
    copy of them imported later is refused too."""
    keys: list[tuple[Kind, str]] = []
    if contact_id is not None:
        keys.append((Kind.CONTACT, str(contact_id)))
    if telegram_user_id is not None:
        keys.append((Kind.TELEGRAM_USER_ID, str(telegram_user_id)))
    if username:
        keys.append((Kind.USERNAME, username.strip().removeprefix("@").lower()))
    if phone:
        digits = "".join(ch for ch in phone if ch.isascii() and ch.isdigit())
        if digits:
            keys.append((Kind.PHONE, digits))
    return keys


# Defaults for an organization that set none (and for personal mode): English, Russian and
# Spanish, the languages our users write to most.
DEFAULT_OPT_OUT_PHRASES: tuple[str, ...] = (
    "stop",
    "unsubscribe",
    "opt out",
    "optout",
    "remove me",
    "стоп",
    "отписаться",
    "отпишись",
    "отписка",
    "не пишите",
    "baja",
    "darme de baja",
    "parar",
    "detener",
    "no me escribas",
)
MAX_PHRASES = 100
MAX_PHRASE_LENGTH = 100

_WORD = re.compile(r"\w+")


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD, combining marks dropped, casefolded. The Cyrillic
    short i and yo lose their marks too, on both sides, so they still match each other."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def _words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def opts_out(reply: str, phrases: Iterable[str]) -> bool:
    """Does this reply say one of the phrases as whole words ("stop" in "please STOP", not in
    "stopwatch"; "opt out" in "Opt-out, thanks")? A phrase is its words in order; punctuation
    between them does not matter."""
    words = _words(reply)
    for phrase in phrases:
        wanted = _words(phrase)
        if wanted and _contains(words, wanted):
            return True
    return False


def _contains(words: Sequence[str], wanted: Sequence[str]) -> bool:
    n = len(wanted)
    return any(list(words[i : i + n]) == list(wanted) for i in range(len(words) - n + 1))


def check_phrases(phrases: Sequence[str]) -> list[str]:
    """An organization's phrases as stored: trimmed, each with at least one word; ValueError
    says which one is wrong."""
    if len(phrases) > MAX_PHRASES:
        raise ValueError(f"at most {MAX_PHRASES} opt-out phrases")
    kept: list[str] = []
    for phrase in phrases:
        text = phrase.strip()
        if not 1 <= len(text) <= MAX_PHRASE_LENGTH:
            raise ValueError(f"an opt-out phrase has 1-{MAX_PHRASE_LENGTH} characters")
        if not _words(text):
            raise ValueError(f"the opt-out phrase {phrase!r} has no word to match")
        kept.append(text)
    return kept
