"""Active hours in the recipient's zone: the zone a phone number implies, and the next moment."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from shared.domain.recipient_zones import next_send_moment, zone_for_phone
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


def utc(year: int, month: int, day: int, hour: int) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


NINE_TO_FIVE = Window("Europe/Berlin", start=time(9), end=time(17))
WEEKDAYS = Window("Europe/Berlin", days=frozenset(range(1, 6)), start=time(9), end=time(17))

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
]


@pytest.mark.parametrize(("window", "moment", "zone", "expected"), MOMENTS)
def test_next_send_moment(
    window: Window, moment: datetime, zone: str | None, expected: datetime
) -> None:
    assert next_send_moment(window, moment, zone) == expected
