"""Active hours in the recipient's zone: the zone a phone number implies, and the next moment."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from shared.domain.recipient_zones import (
    ContactZone,
    effective_zone,
    next_send_moment,
    recipient_zone,
    valid_zone,
    zone_for_phone,
)
from shared.domain.windows import Window

PHONES = [
    ("+49 30 1234567", "Europe/Berlin"),
    ("0049301234567", "Europe/Berlin"),
    ("+380 44 123 4567", "Europe/Kyiv"),
    ("+44 20 7946 0000", "Europe/London"),
    ("+1 212 555 0100", None),  # several zones
    ("+7 495 123 4567", None),  # several zones
    ("+34 91 123 4567", None),  # the Canaries
    ("030 1234567", None),  # no country code
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("phone", "zone"), PHONES)
def test_zone_for_phone(phone: str | None, zone: str | None) -> None:
    assert zone_for_phone(phone) == zone


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


NINE_TO_FIVE = Window("Europe/Berlin", start=time(9), end=time(17))
WEEKDAYS = Window("Europe/Berlin", days=frozenset(range(1, 6)), start=time(9), end=time(17))
EARLY = Window("Europe/Berlin", start=time(2, 30), end=time(6))
LATE = Window("Europe/Berlin", start=time(22), end=time(2))

MOMENTS = [
    # window, moment (UTC), recipient zone -> next send moment (UTC)
    # 10:00 UTC is 11:00 in Berlin (open), 19:00 in Tokyo (closed: 09:00 Tokyo is 00:00 UTC).
    (NINE_TO_FIVE, utc(2026, 1, 12, 10), None, utc(2026, 1, 12, 10)),
    (NINE_TO_FIVE, utc(2026, 1, 12, 10), "Asia/Tokyo", utc(2026, 1, 13, 0)),
    # 03:00 UTC is 12:00 in Tokyo (open) but 04:00 in Berlin (closed until 08:00 UTC).
    (NINE_TO_FIVE, utc(2026, 1, 12, 3), "Asia/Tokyo", utc(2026, 1, 12, 3)),
    (NINE_TO_FIVE, utc(2026, 1, 12, 3), None, utc(2026, 1, 12, 8)),
    # New York in summer (UTC-4): 12:00 UTC is 08:00 there, opens at 13:00 UTC.
    (NINE_TO_FIVE, utc(2026, 7, 13, 12), "America/New_York", utc(2026, 7, 13, 13)),
    # Friday 23:00 UTC is already Saturday 08:00 in Tokyo: weekdays only, so Monday 09:00 Tokyo.
    (WEEKDAYS, utc(2026, 1, 16, 23), "Asia/Tokyo", utc(2026, 1, 19, 0)),
    # An unknown zone falls back to the campaign's.
    (NINE_TO_FIVE, utc(2026, 1, 12, 3), "Mars/Olympus", utc(2026, 1, 12, 8)),
    # Ahead of UTC by a half hour: 02:00 UTC is 07:30 in Kolkata, which opens at 03:30 UTC.
    (NINE_TO_FIVE, utc(2026, 1, 12, 2), "Asia/Kolkata", utc(2026, 1, 12, 3, 30)),
    # Behind UTC: 10:00 UTC is 02:00 in Los Angeles (UTC-8 in winter), open at 17:00 UTC; the
    # same moment is open in Berlin, the campaign's zone.
    (NINE_TO_FIVE, utc(2026, 1, 12, 10), "America/Los_Angeles", utc(2026, 1, 12, 17)),
    # Los Angeles in summer (UTC-7): one hour earlier in UTC.
    (NINE_TO_FIVE, utc(2026, 7, 13, 10), "America/Los_Angeles", utc(2026, 7, 13, 16)),
    # Closing: 16:59 in Tokyo is open, 17:00 is shut until 09:00 the next day.
    (NINE_TO_FIVE, utc(2026, 1, 12, 7, 59), "Asia/Tokyo", utc(2026, 1, 12, 7, 59)),
    (NINE_TO_FIVE, utc(2026, 1, 12, 8), "Asia/Tokyo", utc(2026, 1, 13, 0)),
    # A recipient's DST edges. New York springs forward on 8 March 2026 (02:00 EST -> 03:00
    # EDT): a window opening at 02:30 that day opens at the first real moment after, 03:00 EDT
    # (07:00 UTC); the day after, 02:30 EDT is 06:30 UTC.
    (EARLY, utc(2026, 3, 8, 6), "America/New_York", utc(2026, 3, 8, 7)),
    (EARLY, utc(2026, 3, 9, 5), "America/New_York", utc(2026, 3, 9, 6, 30)),
    # Berlin falls back on 25 October 2026 (03:00 CEST -> 02:00 CET): 02:30 happens twice and
    # the window opens at the first, 00:30 UTC; from a campaign in Tokyo, where it is 09:00.
    (
        Window("Asia/Tokyo", start=time(2, 30), end=time(5)),
        utc(2026, 10, 25, 0),
        "Europe/Berlin",
        utc(2026, 10, 25, 0, 30),
    ),
    # A window crossing midnight, in the recipient's zone: 22:00-02:00 Tokyo is 13:00-17:00 UTC.
    (LATE, utc(2026, 1, 12, 12), "Asia/Tokyo", utc(2026, 1, 12, 13)),
    (LATE, utc(2026, 1, 12, 16, 30), "Asia/Tokyo", utc(2026, 1, 12, 16, 30)),
]


@pytest.mark.parametrize(("window", "moment", "zone", "expected"), MOMENTS)
def test_next_send_moment(
    window: Window, moment: datetime, zone: str | None, expected: datetime
) -> None:
    assert next_send_moment(window, moment, zone) == expected


ZONES = [
    # time_zone given, phone -> effective zone
    ("Asia/Tokyo", "+49 30 1234567", ContactZone("Asia/Tokyo", inferred=False)),  # given wins
    (None, "+49 30 1234567", ContactZone("Europe/Berlin", inferred=True)),
    (None, "+1 212 555 0100", ContactZone(None, inferred=False)),  # several zones
    (None, None, ContactZone(None, inferred=False)),
    ("America/New_York", None, ContactZone("America/New_York", inferred=False)),
    # One the zone database does not know (the API refuses it) is not used.
    ("Mars/Olympus", "+81 3 1234 5678", ContactZone("Asia/Tokyo", inferred=True)),
]


@pytest.mark.parametrize(("given", "phone", "expected"), ZONES)
def test_effective_zone(given: str | None, phone: str | None, expected: ContactZone) -> None:
    assert effective_zone(given, phone) == expected


RECIPIENT_ZONES = [
    # in_recipient_zone, time_zone, phone -> the zone the window is read in (None: campaign's)
    (False, "Asia/Tokyo", "+49 30 1234567", None),
    (True, "Asia/Tokyo", "+49 30 1234567", "Asia/Tokyo"),
    (True, None, "+49 30 1234567", "Europe/Berlin"),
    (True, None, "+7 495 123 4567", None),
    (True, None, None, None),
]


@pytest.mark.parametrize(("on", "given", "phone", "expected"), RECIPIENT_ZONES)
def test_recipient_zone(
    on: bool, given: str | None, phone: str | None, expected: str | None
) -> None:
    assert recipient_zone(on, given, phone) == expected


NAMES = [
    ("Europe/Berlin", True),
    ("America/Argentina/Buenos_Aires", True),
    ("UTC", True),
    ("Europe/berlin", False),  # case as written
    ("CEST", False),  # an abbreviation
    ("Mars/Olympus", False),
    ("", False),
    (None, False),
    ("../etc/passwd", False),
    ("/usr/share/zoneinfo/UTC", False),
    ("localtime", False),  # the server's own zone, whatever that is
    ("posixrules", False),
    ("Factory", False),
    ("right/UTC", False),
    ("posix/Europe/Berlin", False),
]


@pytest.mark.parametrize(("name", "valid"), NAMES)
def test_valid_zone(name: str | None, valid: bool) -> None:
    assert valid_zone(name) == (name if valid else None)
