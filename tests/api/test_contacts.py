"""Contacts and a campaign's contacts through HTTP: CRUD, CSV import, adding (one execution per
contact, duplicates skipped and counted) and removing (soft delete)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from shared.csv_export import csv_bytes
from tests.api.conftest import Organization, Person, PersonFactory
from tests.builders import add_contacts, campaign, command, contact, launchable, ok


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def test_contact_crud_normalises_identifiers(ann: Person) -> None:
    created = ok(
        await ann.client.post(
            "/contacts",
            json={
                "telegram_username": "@Ada_Lovelace",
                "phone": "+44 (20) 7946-0958",
                "first_name": "Ada",
                "custom_fields": {"tier": "gold", "visits": 3},
                "tags": ["vip"],
            },
        ),
        201,
    )
    assert (created["telegram_username"], created["phone"]) == ("Ada_Lovelace", "+442079460958")
    path = f"/contacts/{created['id']}"
    assert ok(await ann.client.get(path)) == created
    patched = ok(await ann.client.patch(path, json={"last_name": "King", "tags": ["vip", "uk"]}))
    assert (patched["first_name"], patched["last_name"], patched["tags"]) == (
        "Ada",
        "King",
        ["vip", "uk"],
    )
    cleared = await ann.client.patch(path, json={"telegram_username": None, "phone": None})
    assert cleared.status_code == 422  # a contact keeps a way to reach it
    assert cleared.json()["errors"][0]["field"] == "telegram_username"
    listed = ok(await ann.client.get("/contacts", params={"tag": "uk"}))["items"]
    assert [c["id"] for c in listed] == [created["id"]]
    assert ok(await ann.client.get("/contacts", params={"search": "lovel"}))["items"] != []
    assert (await ann.client.delete(path)).status_code == 204
    assert (await ann.client.get(path)).status_code == 404
    assert ok(await ann.client.get("/contacts"))["items"] == []


async def test_contact_input_errors_name_their_fields(ann: Person) -> None:
    response = await ann.client.post(
        "/contacts",
        json={
            "telegram_username": "1x",
            "phone": "12",
            "telegram_user_id": -5,
            "colour": "red",
        },
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {
        "telegram_username",
        "phone",
        "telegram_user_id",
        "colour",
    }
    nothing = await ann.client.post("/contacts", json={"first_name": "Nobody"})
    assert nothing.status_code == 422
    assert nothing.json()["errors"][0]["field"] == "telegram_username"


async def test_contacts_are_shared_in_an_organization_and_private_in_personal_mode(
    organization: Organization,
) -> None:
    org = organization.id
    shared = await contact(organization.member.at(org), "shareduser")
    private = await contact(organization.member.client, "privateuser")
    assert ok(await organization.admin.at(org).get(f"/contacts/{shared['id']}"))
    assert (await organization.admin.client.get(f"/contacts/{private['id']}")).status_code == 404
    assert (await organization.member.at(org).get(f"/contacts/{private['id']}")).status_code == 404


async def test_csv_import_reports_bad_rows_and_imports_the_good_ones(ann: Person) -> None:
    csv = (
        "telegram_username,phone,first_name,tags,company\n"
        "grace_h,,Grace,vip;navy,Navy\n"
        ",+15551234567,Alan,,\n"
        "1bad,,Broken,,\n"
        ",,NoIdentity,,\n"
        "linus_t,,Linus,,Linux,extra\n"
    )
    response = await ann.client.post(
        "/contacts/import", content=csv.encode(), headers={"Content-Type": "text/csv"}
    )
    result = ok(response)
    assert (result["imported"], result["failed"]) == (2, 3)
    assert [(e["row"], [x["field"] for x in e["errors"]]) for e in result["errors"]] == [
        (4, ["telegram_username"]),
        (5, ["telegram_username"]),
        (6, ["row"]),
    ]
    contacts = ok(await ann.client.get("/contacts", params={"search": "grace"}))["items"]
    [grace] = contacts
    assert grace["tags"] == ["vip", "navy"]
    assert grace["custom_fields"] == {"company": "Navy"}
    no_header = await ann.client.post(
        "/contacts/import", content=b"name\nx\n", headers={"Content-Type": "text/csv"}
    )
    assert no_header.status_code == 422


async def test_an_exported_row_imports_again_unchanged(ann: Person) -> None:
    """The export writes every cell through csv_export.neutralised (a leading apostrophe on a
    cell a spreadsheet would run); the import takes exactly that apostrophe off again."""
    names = {"formula_ann": "=cmd()", "quoted_bob": "'=quoted", "plain_cy": "it's", "num_di": "-12"}
    rows = [("telegram_username", "first_name"), *names.items()]
    response = await ann.client.post(
        "/contacts/import", content=csv_bytes(rows), headers={"Content-Type": "text/csv"}
    )
    assert ok(response)["imported"] == len(names)
    for username, first_name in names.items():
        [found] = ok(await ann.client.get("/contacts", params={"search": username}))["items"]
        assert found["first_name"] == first_name, username


async def executions(db: asyncpg.Pool[Any], campaign_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT contact_id::text, status, next_execution_at, context, deleted_at, error_message"
        " FROM executions WHERE campaign_id = $1 ORDER BY created_at, contact_id",
        campaign_id,
    )


async def test_adding_contacts_creates_one_due_execution_each_and_skips_duplicates(
    ann: Person, db: asyncpg.Pool[Any], person: PersonFactory
) -> None:
    target = await campaign(ann.client, "Adding")
    ada = await contact(ann.client, "ada_l", first_name="Ada", custom_fields={"tier": "gold"})
    bob = await contact(ann.client, "bob_b")
    stranger = await contact((await person("stranger")).client, "not_yours")
    before = datetime.now(UTC)
    first = await add_contacts(ann.client, target["id"], [ada["id"], bob["id"], ada["id"]])
    assert {k: first[k] for k in ("requested", "added", "skipped_duplicates", "not_found")} == {
        "requested": 2,
        "added": 2,
        "skipped_duplicates": 0,
        "not_found": 0,
    }
    assert first["campaign"]["has_contacts"] is True
    second = await add_contacts(ann.client, target["id"], [ada["id"], stranger["id"]])
    assert (second["added"], second["skipped_duplicates"], second["not_found"]) == (0, 1, 1)

    rows = await executions(db, target["id"])
    assert len(rows) == 2
    assert {r["status"] for r in rows} == {"pending"}
    assert all(before <= r["next_execution_at"] <= datetime.now(UTC) for r in rows)  # due now
    ada_row = next(r for r in rows if r["contact_id"] == ada["id"])
    assert ada_row["context"]["contact"]["first_name"] == "Ada"
    assert ada_row["context"]["contact"]["custom_fields"] == {"tier": "gold"}

    listed = ok(await ann.client.get(f"/campaign-flows/{target['id']}/contacts"))["items"]
    assert {(c["telegram_username"], c["status"]) for c in listed} == {
        ("ada_l", "pending"),
        ("bob_b", "pending"),
    }


async def test_contacts_added_to_an_active_campaign_are_due_at_once(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Running")
    ok(await command(ann.client, ready["id"], "launch"))
    late = await contact(ann.client, "latecomer")
    added = await add_contacts(ann.client, ready["id"], [late["id"]])
    assert (added["added"], added["reactivated"], added["campaign"]["status"]) == (
        1,
        False,
        "active",
    )
    row = next(r for r in await executions(db, ready["id"]) if r["contact_id"] == late["id"])
    assert row["status"] == "pending"
    assert row["next_execution_at"] <= datetime.now(UTC)


async def test_adding_contacts_reactivates_a_completed_campaign(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Finished")
    ok(await command(ann.client, ready["id"], "launch"))
    # The engine completes campaigns (issue 4); here the state is set directly.
    await db.execute("UPDATE campaigns SET status = 'completed' WHERE id = $1", ready["id"])
    await db.execute(
        "UPDATE executions SET status = 'completed' WHERE campaign_id = $1", ready["id"]
    )
    newcomer = await contact(ann.client, "newcomer")
    added = await add_contacts(ann.client, ready["id"], [newcomer["id"]])
    assert added["reactivated"] is True
    assert added["campaign"]["status"] == "active"


async def test_removing_contacts_soft_deletes_their_executions(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Removing", contacts=2)
    ok(await command(ann.client, ready["id"], "launch"))
    listed = ok(await ann.client.get(f"/campaign-flows/{ready['id']}/contacts"))["items"]
    gone, kept = listed[0]["contact_id"], listed[1]["contact_id"]
    unknown = "00000000-0000-0000-0000-00000000abcd"
    response = await ann.client.request(
        "DELETE", f"/campaign-flows/{ready['id']}/contacts", json={"contact_ids": [gone, unknown]}
    )
    removed = ok(response)
    assert (removed["requested"], removed["removed"], removed["not_in_campaign"]) == (2, 1, 1)
    rows = {r["contact_id"]: r for r in await executions(db, ready["id"])}
    assert rows[gone]["deleted_at"] is not None  # kept for history, out of the campaign
    assert rows[gone]["status"] == "cancelled"
    assert rows[kept]["deleted_at"] is None
    listed = ok(await ann.client.get(f"/campaign-flows/{ready['id']}/contacts"))["items"]
    assert [c["contact_id"] for c in listed] == [kept]
    # Added again, the contact starts afresh.
    again = await add_contacts(ann.client, ready["id"], [gone])
    assert again["added"] == 1
    rows = {r["contact_id"]: r for r in await executions(db, ready["id"])}
    assert (rows[gone]["status"], rows[gone]["deleted_at"]) == ("pending", None)


async def test_campaign_contacts_page_and_filter(ann: Person) -> None:
    ready = await launchable(ann.client, "Paging", contacts=5)
    first = ok(await ann.client.get(f"/campaign-flows/{ready['id']}/contacts", params={"limit": 2}))
    seen = [c["contact_id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = ok(
            await ann.client.get(
                f"/campaign-flows/{ready['id']}/contacts", params={"limit": 2, "cursor": cursor}
            )
        )
        seen += [c["contact_id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    searched = ok(
        await ann.client.get(
            f"/campaign-flows/{ready['id']}/contacts", params={"search": "pagingp3"}
        )
    )
    assert len(searched["items"]) == 1
    by_status = ok(
        await ann.client.get(
            f"/campaign-flows/{ready['id']}/contacts", params={"status": "cancelled"}
        )
    )
    assert by_status["items"] == []


async def test_contacts_given_at_creation_are_added_when_the_campaign_is_saved(
    ann: Person,
) -> None:
    people = [(await contact(ann.client, f"atcreation{i}"))["id"] for i in range(2)]
    created = await campaign(ann.client, "With contacts", contact_ids=people)
    assert created["has_contacts"] is True
    listed = ok(await ann.client.get(f"/campaign-flows/{created['id']}/contacts"))["items"]
    assert sorted(c["contact_id"] for c in listed) == sorted(people)


async def test_deleting_a_contact_takes_it_out_of_every_campaign_in_the_same_transaction(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    """Issue 15, item 1: its unfinished executions are cancelled with the reason in every
    campaign, a finished one keeps its outcome, all leave their campaigns (as the bulk delete
    does), and each is named by an execution.progressed event for the statistics."""
    first = await launchable(ann.client, "DelFirst", contacts=1)
    second = await launchable(ann.client, "DelSecond", contacts=1)
    doomed = await contact(ann.client, "doomedcontact")
    for created in (first, second):
        await add_contacts(ann.client, created["id"], [doomed["id"]])
    await db.execute(
        "UPDATE executions SET status = 'completed', completed_at = now()"
        " WHERE campaign_id = $1 AND contact_id = $2",
        second["id"],
        doomed["id"],
    )

    assert (await ann.client.delete(f"/contacts/{doomed['id']}")).status_code == 204

    gone = await db.fetch(
        "SELECT id, campaign_id::text, status, error_message, deleted_at, lease_until"
        " FROM executions WHERE contact_id = $1",
        doomed["id"],
    )
    assert {(r["campaign_id"], r["status"], r["error_message"]) for r in gone} == {
        (first["id"], "cancelled", "contact_deleted"),
        (second["id"], "completed", None),
    }
    assert all(r["deleted_at"] is not None and r["lease_until"] is None for r in gone)
    for created in (first, second):  # the other contacts stay
        rows = await executions(db, created["id"])
        assert [r["deleted_at"] for r in rows if r["contact_id"] != doomed["id"]] == [None]
        listed = ok(await ann.client.get(f"/campaign-flows/{created['id']}/contacts"))["items"]
        assert doomed["id"] not in {c["contact_id"] for c in listed}
    events = await db.fetch(
        "SELECT value FROM outbox WHERE headers->>'message-type' = 'execution.progressed'"
        " AND convert_from(value, 'UTF8')::jsonb->'payload'->>'contact_id' = $1",
        doomed["id"],
    )
    payloads = [json.loads(bytes(e["value"]))["payload"] for e in events]
    assert sorted(
        (p["campaign_id"], p["previous_status"], p["status"]) for p in payloads
    ) == sorted([(first["id"], "pending", "cancelled"), (second["id"], "completed", "completed")])
    assert {p["detail"] for p in payloads} == {"contact_deleted"}
