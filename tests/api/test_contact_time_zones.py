"""A contact's own time zone and the campaign setting that reads active hours in it (issue 16,
item 3): set at creation, by PATCH and by the CSV import, validated (`unknown_time_zone`),
inferred from the phone number's country when none is given (shown, not stored), and the
campaign's `active_hours.in_recipient_zone`."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.api.conftest import Person, PersonFactory
from tests.builders import campaign, ok


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


def zones(contact: dict[str, Any]) -> tuple[str | None, str | None, bool]:
    return contact["time_zone"], contact["effective_time_zone"], contact["time_zone_inferred"]


async def test_a_contacts_zone_is_given_or_inferred_from_its_phone(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    given = ok(
        await ann.client.post(
            "/contacts", json={"telegram_username": "kenji_t", "time_zone": "Asia/Tokyo"}
        ),
        201,
    )
    assert zones(given) == ("Asia/Tokyo", "Asia/Tokyo", False)
    # A German number: Germany has one zone. The inference is shown, not stored.
    berlin = ok(await ann.client.post("/contacts", json={"phone": "+49 30 1234567"}), 201)
    assert zones(berlin) == (None, "Europe/Berlin", True)
    assert await db.fetchval("SELECT time_zone FROM contacts WHERE id = $1", berlin["id"]) is None
    # +1 covers several zones: nothing to infer.
    unknown = ok(await ann.client.post("/contacts", json={"phone": "+1 212 555 0100"}), 201)
    assert zones(unknown) == (None, None, False)

    path = f"/contacts/{berlin['id']}"
    patched = ok(await ann.client.patch(path, json={"time_zone": "America/New_York"}))
    assert zones(patched) == ("America/New_York", "America/New_York", False)
    assert zones(ok(await ann.client.get(path))) == zones(patched)
    # Other edits keep it; null clears it, and the phone's zone shows again.
    kept = ok(await ann.client.patch(path, json={"first_name": "Lena"}))
    assert kept["time_zone"] == "America/New_York"
    cleared = ok(await ann.client.patch(path, json={"time_zone": None}))
    assert zones(cleared) == (None, "Europe/Berlin", True)
    [listed] = [c for c in ok(await ann.client.get("/contacts"))["items"] if c["id"] == given["id"]]
    assert zones(listed) == ("Asia/Tokyo", "Asia/Tokyo", False)


@pytest.mark.parametrize(
    "zone", ["Mars/Olympus", "Europe/berlin", "", "../etc/passwd", "CEST", "localtime"]
)
async def test_an_unknown_zone_is_refused_naming_the_field(ann: Person, zone: str) -> None:
    created = await ann.client.post(
        "/contacts", json={"telegram_username": "someone_x", "time_zone": zone}
    )
    assert created.status_code == 422
    body = created.json()
    assert body["code"] == "validation_error"
    assert [(e["field"], e["type"]) for e in body["errors"]] == [("time_zone", "unknown_time_zone")]

    contact = ok(await ann.client.post("/contacts", json={"telegram_username": "other_x"}), 201)
    patched = await ann.client.patch(f"/contacts/{contact['id']}", json={"time_zone": zone})
    assert patched.status_code == 422
    assert [(e["field"], e["type"]) for e in patched.json()["errors"]] == [
        ("time_zone", "unknown_time_zone")
    ]


async def test_the_csv_import_reads_the_time_zone_column(ann: Person) -> None:
    csv = (
        "telegram_username,phone,time_zone\n"
        "tokyo_a,,Asia/Tokyo\n"
        ",+4930123456,\n"
        "mars_b,,Mars/Olympus\n"
    )
    response = await ann.client.post(
        "/contacts/import", content=csv.encode(), headers={"Content-Type": "text/csv"}
    )
    result = ok(response)
    assert (result["imported"], result["failed"]) == (2, 1)
    assert [
        (e["row"], [(x["field"], x["type"]) for x in e["errors"]]) for e in result["errors"]
    ] == [(4, [("time_zone", "unknown_time_zone")])]
    found = {
        c["telegram_username"] or c["phone"]: zones(c)
        for c in ok(await ann.client.get("/contacts"))["items"]
    }
    assert found == {
        "tokyo_a": ("Asia/Tokyo", "Asia/Tokyo", False),
        "+4930123456": (None, "Europe/Berlin", True),
    }


async def test_a_campaign_reads_its_active_hours_in_each_recipients_zone_when_asked(
    ann: Person,
) -> None:
    hours = {"start": "09:00", "end": "17:00"}
    plain = await campaign(ann.client, settings={"active_hours": hours})
    assert plain["settings"]["active_hours"]["in_recipient_zone"] is False
    created = await campaign(
        ann.client, "Local", settings={"active_hours": {**hours, "in_recipient_zone": True}}
    )
    assert created["settings"]["active_hours"]["in_recipient_zone"] is True
    path = f"/campaign-flows/{created['id']}"
    assert ok(await ann.client.get(path))["settings"]["active_hours"]["in_recipient_zone"] is True
    # A patch replaces the window whole: without the flag it is off again.
    patched = ok(await ann.client.patch(path, json={"settings": {"active_hours": hours}}))
    assert patched["settings"]["active_hours"]["in_recipient_zone"] is False

    bad = await ann.client.patch(
        path, json={"settings": {"active_hours": {**hours, "in_recipient_zone": "yes"}}}
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["settings.active_hours.in_recipient_zone"]
