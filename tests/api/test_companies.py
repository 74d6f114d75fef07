"""Companies through HTTP (issue 19, item 2): CRUD with keyset paging and filters, validation
with its problem codes, the contacts' permission rule, and the bulk actions add_to_company and
remove_from_company through the live api and scheduler, with per-item results. Contacts and
a campaign's contacts filter by company."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Organization, Person, PersonFactory
from tests.builders import FLOW, account, add_contacts, campaign, contact, ok
from tests.support import eventually


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def company(client: httpx.AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    return ok(await client.post("/companies", json={"name": name, **fields}), 201)  # type: ignore[no-any-return]


async def finished(client: httpx.AsyncClient, action_id: str) -> dict[str, Any]:
    async def done() -> Any:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found if found["status"] in ("completed", "cancelled", "failed") else None

    return await eventually(done)  # type: ignore[no-any-return]


async def outcomes(client: httpx.AsyncClient, action_id: str) -> dict[str, tuple[str, str]]:
    page = ok(await client.get(f"/bulk-actions/{action_id}/items", params={"limit": 1000}))
    return {i["contact_id"]: (i["status"], i["code"]) for i in page["items"]}


async def test_a_company_is_created_read_edited_and_deleted(ann: Person) -> None:
    created = await company(
        ann.client, "Acme", domain="https://www.Acme.com/about", telegram_channel="t.me/acme_news",
        custom_fields={"industry": "tools", "size": 40},
    )  # fmt: skip
    assert (created["domain"], created["telegram_channel"], created["contacts"]) == (
        "acme.com",
        "acme_news",
        0,
    )
    assert created["custom_fields"] == {"industry": "tools", "size": 40}
    url = f"/companies/{created['id']}"
    assert ok(await ann.client.get(url)) == created
    edited = ok(await ann.client.patch(url, json={"name": "Acme Inc", "domain": None}))
    assert (edited["name"], edited["domain"], edited["telegram_channel"]) == (
        "Acme Inc",
        None,
        "acme_news",
    )
    member = await contact(ann.client, "acmeperson", company_id=created["id"])
    assert ok(await ann.client.get(url))["contacts"] == 1
    assert (await ann.client.delete(url)).status_code == 204
    assert (await ann.client.get(url)).json()["code"] == "company_not_found"
    # The contact stays, without a company.
    assert ok(await ann.client.get(f"/contacts/{member['id']}"))["company_id"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "A", "domain": "not a domain"}, "domain"),
        ({"name": "A", "telegram_channel": "https://t.me/+invite"}, "telegram_channel"),
        ({"name": "A", "custom_fields": {"k": "v" * 5001}}, "custom_fields"),
        ({"name": "A", "colour": "red"}, "colour"),
        ({"domain": "acme.com"}, "name"),
    ],
)
async def test_a_bad_company_is_a_specific_422(ann: Person, body: Any, field: str) -> None:
    answer = await ann.client.post("/companies", json=body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_a_patch_cannot_null_the_name(ann: Person) -> None:
    created = await company(ann.client, "Nully")
    answer = await ann.client.patch(f"/companies/{created['id']}", json={"name": None})
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (422, "name")


async def test_the_list_pages_by_keyset_and_filters(ann: Person, person: PersonFactory) -> None:
    made = [await company(ann.client, f"Firm {n}", domain=f"firm{n}.io") for n in range(5)]
    await company(ann.client, "Other", telegram_channel="@OtherNews")
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "search": "firm"}
        if cursor:
            params["cursor"] = cursor
        page = ok(await ann.client.get("/companies", params=params))
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [c["id"] for c in reversed(made)]  # newest first, each once
    by_domain = ok(await ann.client.get("/companies", params={"domain": "HTTPS://firm3.io/"}))
    assert [c["name"] for c in by_domain["items"]] == ["Firm 3"]
    by_channel = ok(await ann.client.get("/companies", params={"telegram_channel": "othernews"}))
    assert [c["name"] for c in by_channel["items"]] == ["Other"]
    bad = await ann.client.get("/companies", params={"domain": "nope"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "query.domain")
    bad_cursor = await ann.client.get("/companies", params={"cursor": "garbage"})
    assert (bad_cursor.status_code, bad_cursor.json()["code"]) == (400, "invalid_cursor")
    # Another user's personal companies are not there, and one by id is a 404.
    bob = await person("bob")
    assert ok(await bob.client.get("/companies"))["items"] == []
    answer = await bob.client.get(f"/companies/{made[0]['id']}")
    assert (answer.status_code, answer.json()["code"]) == (404, "company_not_found")
    answer = await bob.client.post("/contacts", json={"telegram_username": "bobsguy",
                                                      "company_id": made[0]["id"]})  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (404, "company_not_found")


async def test_members_share_companies_and_only_owners_and_admins_delete_others(
    organization: Organization,
) -> None:
    org = organization.id
    member, other = organization.member.at(org), organization.other_member.at(org)
    mine = await company(member, "Member's")
    theirs = await company(other, "Other member's")
    # Every member sees and edits the organization's companies (admin view is off).
    names = {c["name"] for c in ok(await member.get("/companies"))["items"]}
    assert names == {"Member's", "Other member's"}
    ok(await member.patch(f"/companies/{theirs['id']}", json={"domain": "other.com"}))
    refused = await member.delete(f"/companies/{theirs['id']}")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    assert (await member.delete(f"/companies/{mine['id']}")).status_code == 204
    admin = organization.admin.at(org)
    assert (await admin.delete(f"/companies/{theirs['id']}")).status_code == 204
    # Personal mode does not see the organization's.
    assert ok(await organization.member.client.get("/companies"))["items"] == []


async def test_bulk_add_and_remove_from_company_with_per_item_results(ann: Person) -> None:
    acme = await company(ann.client, "Acme")
    globex = await company(ann.client, "Globex")
    fresh = await contact(ann.client, "freshlead")
    inside = await contact(ann.client, "insidelead", company_id=acme["id"])
    mover = await contact(ann.client, "moverlead", company_id=globex["id"])
    outsider = await contact(ann.client, "outsider")
    added = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Acme people", "action": "add_to_company",
                  "contact_ids": [fresh["id"], inside["id"], mover["id"]],
                  "params": {"company_id": acme["id"]}},
        ),
        201,
    )  # fmt: skip
    done = await finished(ann.client, added["id"])
    assert (done["status"], done["success_count"], done["skipped_count"]) == ("completed", 2, 1)
    assert await outcomes(ann.client, added["id"]) == {
        fresh["id"]: ("succeeded", "added_to_company"),
        inside["id"]: ("skipped", "already_in_company"),
        mover["id"]: ("succeeded", "moved_to_company"),
    }
    # GET /contacts and the selection filter by company.
    members = ok(await ann.client.get("/contacts", params={"company_id": acme["id"]}))
    assert {c["id"] for c in members["items"]} == {fresh["id"], inside["id"], mover["id"]}
    assert ok(await ann.client.get(f"/companies/{globex['id']}"))["contacts"] == 0
    # A campaign's contacts by company.
    sender = await account(ann.client)
    target = await campaign(ann.client, "By company", telegram_account_id=sender["id"], flow=FLOW)
    await add_contacts(ann.client, target["id"], [fresh["id"], outsider["id"]])
    tab = ok(
        await ann.client.get(
            f"/campaign-flows/{target['id']}/contacts", params={"company_id": acme["id"]}
        )
    )
    assert [(c["contact_id"], c["company_id"]) for c in tab["items"]] == [(fresh["id"], acme["id"])]
    removed = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Leave Acme", "action": "remove_from_company",
                  "contact_ids": [fresh["id"], outsider["id"]],
                  "params": {"company_id": acme["id"]}},
        ),
        201,
    )  # fmt: skip
    await finished(ann.client, removed["id"])
    assert await outcomes(ann.client, removed["id"]) == {
        fresh["id"]: ("succeeded", "removed_from_company"),
        outsider["id"]: ("skipped", "not_in_company"),
    }
    # Select all by company: the filter reaches the bulk selection too.
    tagged = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Tag Acme", "action": "add_tags", "params": {"tags": ["acme"]},
                  "filter": {"company_id": acme["id"]}},
        ),
        201,
    )  # fmt: skip
    await finished(ann.client, tagged["id"])
    assert set(await outcomes(ann.client, tagged["id"])) == {inside["id"], mover["id"]}


async def test_a_company_deleted_before_the_batch_fails_its_contacts(ann: Person) -> None:
    doomed = await company(ann.client, "Doomed")
    someone = await contact(ann.client, "doomedlead")
    action = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Late", "action": "add_to_company", "contact_ids": [someone["id"]],
                  "params": {"company_id": doomed["id"]}, "mode": "scheduled",
                  "start_at": "2099-01-01T00:00:00Z"},
        ),
        201,
    )  # fmt: skip
    assert (await ann.client.delete(f"/companies/{doomed['id']}")).status_code == 204
    edited = await ann.client.patch(
        f"/bulk-actions/{action['id']}", json={"start_at": "2001-01-01T00:00:00Z"}
    )
    assert edited.status_code == 200, edited.text
    done = await finished(ann.client, action["id"])
    assert done["error_count"] == 1
    assert await outcomes(ann.client, action["id"]) == {
        someone["id"]: ("failed", "company_not_found")
    }


async def test_a_bulk_action_names_only_a_company_of_the_callers(
    ann: Person, person: PersonFactory
) -> None:
    theirs = await company((await person("bob")).client, "Bob's")
    someone = await contact(ann.client, "annslead")
    answer = await ann.client.post(
        "/bulk-actions",
        json={"name": "Steal", "action": "add_to_company", "contact_ids": [someone["id"]],
              "params": {"company_id": theirs["id"]}},
    )  # fmt: skip
    assert (answer.status_code, answer.json()["code"]) == (404, "company_not_found")
    answer = await ann.client.post(
        "/bulk-actions",
        json={"name": "No company", "action": "add_to_company", "contact_ids": [someone["id"]],
              "params": {}},
    )  # fmt: skip
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (
        422,
        "params.company_id",
    )
