"""Active hours in the recipient's own time zone (issue 16, item 3): which zone a contact is in,
and the next moment a send may go in that zone.

A contact's zone is the one it was given (`contacts.time_zone`), else the one its phone
number's country implies when that country has a single zone (`effective_zone`, computed where
it is used, never stored). A campaign with `active_hours.in_recipient_zone` reads its window in
that zone (`recipient_zone`), else in its own; the sender's pacing calls `next_send_moment`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.windows import Window, next_allowed

# Country calling codes of countries with a single time zone, and that zone. Countries with
# several (+1, +7, +34 with the Canaries, +55, +61, +52, +62, ...) are left out on purpose: their
# phone numbers say nothing certain about the zone.
SINGLE_ZONE_CODES: dict[str, str] = {
    "20": "Africa/Cairo",
    "27": "Africa/Johannesburg",
    "30": "Europe/Athens",
    "31": "Europe/Amsterdam",
    "32": "Europe/Brussels",
    "33": "Europe/Paris",
    "36": "Europe/Budapest",
    "39": "Europe/Rome",
    "40": "Europe/Bucharest",
    "41": "Europe/Zurich",
    "43": "Europe/Vienna",
    "44": "Europe/London",
    "45": "Europe/Copenhagen",
    "46": "Europe/Stockholm",
    "47": "Europe/Oslo",
    "48": "Europe/Warsaw",
    "49": "Europe/Berlin",
    "65": "Asia/Singapore",
    "81": "Asia/Tokyo",
    "82": "Asia/Seoul",
    "86": "Asia/Shanghai",
    "90": "Europe/Istanbul",
    "91": "Asia/Kolkata",
    "358": "Europe/Helsinki",
    "370": "Europe/Vilnius",
    "371": "Europe/Riga",
    "372": "Europe/Tallinn",
    "373": "Europe/Chisinau",
    "374": "Asia/Yerevan",
    "375": "Europe/Minsk",
    "380": "Europe/Kyiv",
    "420": "Europe/Prague",
    "421": "Europe/Bratislava",
    "971": "Asia/Dubai",
    "972": "Asia/Jerusalem",
    "995": "Asia/Tbilisi",
}


def zone_for_phone(phone: str | None) -> str | None:
    """The time zone a phone number's country is in, when that country has exactly one; None
    for a number without a country code or from a country with several zones."""
    if not phone:
        return None
    digits = "".join(c for c in phone if c.isdigit())
    if not phone.strip().startswith("+") and not phone.strip().startswith("00"):
        return None
    if phone.strip().startswith("00"):
        digits = digits[2:]
    for length in (3, 2, 1):
        zone = SINGLE_ZONE_CODES.get(digits[:length])
        if zone is not None:
            return zone
    return None


# Names the zone database answers that are not a place's zone: the server's own zone, tzcode's
# internals, and the copies of every zone with other leap-second rules.
NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


def valid_zone(name: str | None) -> str | None:
    """`name` if it is an IANA zone the zone database knows (case as written), else None."""
    if not name or name in NOT_PLACES or name.startswith(("posix/", "right/")):
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


def next_send_moment(window: Window, moment: datetime, recipient_zone: str | None) -> datetime:
    """`moment` if the window is open then, else its next opening, with the window's days and
    hours read in the recipient's zone when it has a valid one, else in the window's own."""
    zone = valid_zone(recipient_zone)
    return next_allowed(window if zone is None else replace(window, timezone=zone), moment)


@dataclass(frozen=True)
class ContactZone:
    """A contact's effective zone: the one given, else the one its phone implies (`inferred`);
    None when neither says."""

    zone: str | None
    inferred: bool


def effective_zone(time_zone: str | None, phone: str | None) -> ContactZone:
    given = valid_zone(time_zone)
    if given is not None:
        return ContactZone(given, inferred=False)
    implied = zone_for_phone(phone)
    return ContactZone(implied, inferred=implied is not None)


def recipient_zone(in_recipient_zone: bool, time_zone: str | None, phone: str | None) -> str | None:
    """The zone a campaign's window is read in for this contact, None for the campaign's own:
    with the setting off always the campaign's; on, the contact's effective zone, if any."""
    if not in_recipient_zone:
        return None
    return effective_zone(time_zone, phone).zone
