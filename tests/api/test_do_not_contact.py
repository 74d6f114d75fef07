"""/do-not-contact through HTTP: add (normalised, once), list (filters, keyset pages), remove,
CSV import, the events for other systems, enrolment skipping a listed contact, and who may
edit an organization's list (owners and admins; members read it)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from tests.api.conftest import Organization, Person, PersonFactory
from tests.builders import add_contacts, campaign, contact, ok


@pytest.fixture
async def dora(person: PersonFactory) -> Person:
    return await person("dora")


async def events(db: asyncpg.Pool[Any], type_: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT value FROM outbox WHERE topic = 'dripline.contact.events'"
        " AND headers->>'message-type' = $1 ORDER BY id",
        type_,
    )
    return [json.loads(bytes(r["value"]))["payload"] for r in rows]


async def test_an_entry_is_stored_normalised_once_and_removed(
    dora: Person, db: asyncpg.Pool[Any]
) -> None:
    body = {"kind": "username", "value": "@Alice_Smith", "reason": "complaint", "note": "rude"}
    added = ok(await dora.client.post("/do-not-contact", json=body), 201)
    assert {k: added[k] for k in ("kind", "value", "reason", "source", "note", "added_by")} == {
        "kind": "username",
        "value": "alice_smith",
        "reason": "complaint",
        "source": "api",
        "note": "rude",
        "added_by": str(dora.user_id),
    }
    assert (added["organization_id"], added["user_id"]) == (None, str(dora.user_id))
    # The same person again, spelled otherwise: the entry as it was, 200.
    again = ok(
        await dora.client.post("/do-not-contact", json={"kind": "username", "value": "ALICE_SMITH"})
    )
    assert again == added
    (event,) = await events(db, "do_not_contact.added")
    assert (event["entry_id"], event["value"], event["source"]) == (
        added["id"],
        "alice_smith",
        "api",
    )

    assert ok(await dora.client.get(f"/do-not-contact/{added['id']}")) == added
    assert (await dora.client.delete(f"/do-not-contact/{added['id']}")).status_code == 204
    assert ok(await dora.client.get("/do-not-contact"))["items"] == []
    gone = await dora.client.delete(f"/do-not-contact/{added['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "do_not_contact_entry_not_found")
    (removed,) = await events(db, "do_not_contact.removed")
    assert removed["entry_id"] == added["id"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"kind": "username", "value": "ab"}, "value", "4-32 letters"),
        ({"kind": "phone", "value": "12 34"}, "value", "country code"),
        ({"kind": "telegram_user_id", "value": "-3"}, "value", "positive 64-bit"),
        ({"kind": "contact", "value": "someone"}, "value", "UUID"),
        ({"kind": "email", "value": "a@b.c"}, "kind", ""),
        ({"kind": "phone", "value": "+4915123456789", "reason": "annoyed"}, "reason", ""),
    ],
)
async def test_bad_entries_are_422_naming_the_field(
    dora: Person, body: dict[str, str], field: str, says: str
) -> None:
    response = await dora.client.post("/do-not-contact", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert any(e["field"].endswith(field) and says in e["message"] for e in problem["errors"])


async def test_the_list_filters_and_pages_newest_first(dora: Person) -> None:
    for kind, value, reason in [
        ("phone", "+49 151 2345678", "request"),
        ("username", "bob_b", "manual"),
        ("username", "bobby_t", "manual"),
        ("telegram_user_id", "777", "complaint"),
    ]:
        body = {"kind": kind, "value": value, "reason": reason}
        ok(await dora.client.post("/do-not-contact", json=body), 201)
    whole = ok(await dora.client.get("/do-not-contact"))["items"]
    assert [e["value"] for e in whole] == ["777", "bobby_t", "bob_b", "491512345678"]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = ok(await dora.client.get("/do-not-contact", params=params))
        seen += [e["value"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [e["value"] for e in whole]

    def values(**params: str) -> Any:
        return dora.client.get("/do-not-contact", params=params)

    assert [e["value"] for e in ok(await values(kind="username"))["items"]] == ["bobby_t", "bob_b"]
    assert [e["value"] for e in ok(await values(value="@BOBB"))["items"]] == ["bobby_t"]
    assert [e["value"] for e in ok(await values(reason="complaint"))["items"]] == ["777"]
    assert ok(await values(source="import"))["items"] == []
    bad = await values(cursor="nonsense")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")


async def test_a_csv_import_adds_good_rows_and_reports_bad_ones(dora: Person) -> None:
    csv = (
        "kind,value,reason,telegram_username,phone\n"
        "username,@Carol_C,,,\n"  # reason defaults to imported
        ",,complaint,dave_d,+44 20 7946 0958\n"  # one row, two identifiers
        "phone,123,,,\n"  # bad: not a phone number
        "fax,5551234,,,\n"  # bad: no such kind
        "username,carol_c,,,\n"  # the first row again: already listed, once
    )
    response = await dora.client.post(
        "/do-not-contact/import", content=csv, headers={"Content-Type": "text/csv"}
    )
    result = ok(response)
    assert (result["added"], result["already_listed"], result["failed"]) == (3, 0, 2)
    assert [e["row"] for e in result["errors"]] == [4, 5]
    assert "country code" in result["errors"][0]["errors"][0]["message"]
    listed = ok(await dora.client.get("/do-not-contact"))["items"]
    assert {(e["kind"], e["value"], e["reason"], e["source"]) for e in listed} == {
        ("username", "carol_c", "imported", "import"),
        ("username", "dave_d", "complaint", "import"),
        ("phone", "442079460958", "complaint", "import"),
    }
    again = ok(
        await dora.client.post(
            "/do-not-contact/import",
            content="telegram_username\ncarol_c\n",
            headers={"Content-Type": "text/csv"},
        )
    )
    assert (again["added"], again["already_listed"]) == (0, 1)
    broken = await dora.client.post(
        "/do-not-contact/import",
        content='kind,value\nusername,"unclosed\n',
        headers={"Content-Type": "text/csv"},
    )
    assert broken.status_code == 422
    assert "never closed" in broken.text
    headless = await dora.client.post(
        "/do-not-contact/import", content="name\nx\n", headers={"Content-Type": "text/csv"}
    )
    assert headless.status_code == 422
    assert "kind, telegram_username" in headless.text


async def test_enrolment_skips_a_listed_contact_and_counts_it(
    dora: Person, db: asyncpg.Pool[Any]
) -> None:
    target = await campaign(dora.client, "Careful")
    listed = await contact(dora.client, "Eve_Listed", phone="+49 151 9999999")
    free = await contact(dora.client, "frank_free")
    ok(
        await dora.client.post("/do-not-contact", json={"kind": "phone", "value": "491519999999"}),
        201,
    )

    answer = await add_contacts(dora.client, target["id"], [listed["id"], free["id"]])
    assert {
        k: answer[k] for k in ("requested", "added", "skipped_duplicates", "skipped_do_not_contact")
    } == {"requested": 2, "added": 1, "skipped_duplicates": 0, "skipped_do_not_contact": 1}
    enrolled = await db.fetch(
        "SELECT contact_id FROM executions WHERE campaign_id = $1", target["id"]
    )
    assert [str(r["contact_id"]) for r in enrolled] == [free["id"]]


async def test_only_owners_and_admins_edit_an_organizations_list(
    organization: Organization, dora: Person
) -> None:
    org = organization.id
    owner, admin, member = (p.at(org) for p in (organization.owner, organization.admin,
                                                  organization.member))  # fmt: skip
    entry = ok(
        await owner.post("/do-not-contact", json={"kind": "username", "value": "org_person"}), 201
    )
    ok(await admin.post("/do-not-contact", json={"kind": "username", "value": "admins_one"}), 201)
    refused = [
        await member.post("/do-not-contact", json={"kind": "username", "value": "members_one"}),
        await member.delete(f"/do-not-contact/{entry['id']}"),
        await member.post(
            "/do-not-contact/import",
            content="telegram_username\nmembers_two\n",
            headers={"Content-Type": "text/csv"},
        ),
    ]
    for response in refused:
        assert (response.status_code, response.json()["code"]) == (
            403,
            "do_not_contact_forbidden",
        ), response.text
    # Members read it; the organization's list is not anyone's personal one.
    assert {e["value"] for e in ok(await member.get("/do-not-contact"))["items"]} == {
        "org_person",
        "admins_one",
    }
    assert ok(await organization.owner.client.get("/do-not-contact"))["items"] == []
    assert (await dora.client.delete(f"/do-not-contact/{entry['id']}")).status_code == 404
    assert (await admin.delete(f"/do-not-contact/{entry['id']}")).status_code == 204


async def test_a_member_deletes_only_the_contacts_they_created(
    organization: Organization,
) -> None:
    org = organization.id
    member, other, admin = (p.at(org) for p in (organization.member, organization.other_member,
                                                 organization.admin))  # fmt: skip
    mine = await contact(member, "members_own")
    theirs = await contact(other, "someone_elses")
    refused = await member.delete(f"/contacts/{theirs['id']}")
    assert (refused.status_code, refused.json()["code"]) == (403, "contacts_not_own")
    assert ok(await other.get(f"/contacts/{theirs['id']}"))["id"] == theirs["id"]
    assert (await member.delete(f"/contacts/{mine['id']}")).status_code == 204
    assert (await admin.delete(f"/contacts/{theirs['id']}")).status_code == 204


async def test_an_organization_sets_its_opt_out_phrases(organization: Organization) -> None:
    path = f"/organizations/{organization.id}"
    owner = organization.owner.client
    shown = ok(await owner.get(path))
    assert {"stop", "отписаться", "baja"} <= set(shown["opt_out_phrases"])
    changed = ok(await owner.patch(path, json={"opt_out_phrases": [" leave me alone ", "halt"]}))
    assert changed["opt_out_phrases"] == ["leave me alone", "halt"]
    assert ok(await owner.get(path))["opt_out_phrases"] == ["leave me alone", "halt"]
    renamed = ok(await owner.patch(path, json={"name": "Acme 2"}))
    assert renamed["opt_out_phrases"] == ["leave me alone", "halt"]  # untouched
    bad = await owner.patch(path, json={"opt_out_phrases": ["ok", "?!"]})
    assert bad.status_code == 422
    assert "no word" in bad.text
    member = await organization.member.client.patch(path, json={"opt_out_phrases": ["x"]})
    assert member.status_code == 403
    restored = ok(await owner.patch(path, json={"opt_out_phrases": None}))
    assert restored["opt_out_phrases"] == shown["opt_out_phrases"]


async def test_an_entry_by_an_unknown_contact_id_is_kept_not_a_500(dora: Person) -> None:
    """The value names the contact; no reference is made to a contact row that may not exist
    (or be another list's), so nothing breaks on it."""
    unknown = "00000000-0000-4000-8000-000000000001"
    added = ok(
        await dora.client.post("/do-not-contact", json={"kind": "contact", "value": unknown}), 201
    )
    assert (added["value"], added["contact_id"]) == (unknown, None)
    csv = f"kind,value\ncontact,{unknown.replace('1', '2')}\n"
    imported = ok(
        await dora.client.post(
            "/do-not-contact/import", content=csv, headers={"Content-Type": "text/csv"}
        )
    )
    assert imported["added"] == 1
