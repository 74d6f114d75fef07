"""How a contact's Telegram identifiers are written down: one rule for HTTP (services/api/
contacts.py) and for other systems' Kafka commands (contact.upsert). Pure functions."""

from __future__ import annotations

import re

_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_PHONE = re.compile(r"\+?[1-9][0-9]{6,14}")
_PHONE_NOISE = re.compile(r"[\s\-().]")


def username(value: str | None) -> str | None:
    """Without the @; None for nothing. ValueError names the rule."""
    if value is None or not value.strip():
        return None
    name = value.strip().removeprefix("@")
    if not _USERNAME.fullmatch(name):
        raise ValueError(
            "a Telegram username has 4-32 letters, digits or underscores and starts with a letter"
        )
    return name


def phone(value: str | None) -> str | None:
    """ "+" and the digits of the international number; None for nothing."""
    if value is None or not value.strip():
        return None
    digits = _PHONE_NOISE.sub("", value.strip())
    if not _PHONE.fullmatch(digits):
        raise ValueError("a phone number is 7-15 digits in international form, e.g. +4915123456789")
    return "+" + digits.removeprefix("+")
