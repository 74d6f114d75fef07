"""Imports as a tracked bulk action over HTTP, through the live api and scheduler (issue 19,
item 4): POST /imports streams the file in, POST /bulk-actions applies it, and the rows'
outcomes, progress and counts are on the bulk-action endpoints every action uses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import Live, Organization, Person, PersonFactory
from tests.builders import FLOW, account, campaign, contact, ok
from tests.support import eventually


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def upload(
    client: httpx.AsyncClient, body: bytes | str, content_type: str = "text/csv"
) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return await client.post("/imports", content=data, headers={"Content-Type": content_type})


async def finished(client: httpx.AsyncClient, action_id: str) -> dict[str, Any]:
    async def done() -> Any:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found if found["status"] in ("completed", "cancelled", "failed") else None

    return await eventually(done, timeout_s=60)  # type: ignore[no-any-return]


async def rows(client: httpx.AsyncClient, action_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every row's outcome, page by page."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = ok(
            await client.get(
                f"/bulk-actions/{action_id}/items",
                params={"limit": 2, **params, **({"cursor": cursor} if cursor else {})},
            )
        )
        found.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_an_upload_is_imported_with_a_result_per_row(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    known = await contact(ann.client, "known_lead", first_name="Old")
    sender = await account(ann.client)
    target = await campaign(ann.client, "Imported", telegram_account_id=sender["id"], flow=FLOW)
    stored = ok(
        await upload(
            ann.client,
            "telegram_username,phone,first_name,plan\n"
            "imported_one,,One,pro\n"
            "known_lead,,Renamed,\n"
            "imported_two,not a phone,,\n"
            "imported_one,+4915100000042,,\n",
        ),
        201,
    )
    assert (stored["rows"], stored["format"], stored["bulk_action_id"]) == (4, "csv", None)
    assert stored["columns"] == ["telegram_username", "phone", "first_name", "plan"]
    created = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Spring list", "action": "import_contacts",
                  "params": {"import_id": stored["id"], "tags": ["spring"],
                             "campaign_id": target["id"]}},
        ),
        201,
    )  # fmt: skip
    assert (created["action"], created["total"]) == ("import_contacts", 4)
    done = await finished(ann.client, created["id"])
    assert (done["status"], done["processed"], done["success_count"], done["error_count"]) == (
        "completed", 4, 3, 1,
    )  # fmt: skip
    items = await rows(ann.client, created["id"])
    assert [(i["line"], i["status"], i["code"]) for i in items] == [
        (2, "succeeded", "created"),
        (3, "succeeded", "updated"),
        (4, "failed", "invalid_phone"),
        (5, "succeeded", "duplicate_merged"),
    ]
    assert items[1]["contact_id"] == known["id"]
    assert items[3]["contact_id"] == items[0]["contact_id"]
    assert items[2]["contact_id"] is None
    assert "phone" in items[2]["message"]
    assert items[0]["details"]["campaign"] == "added"
    failed = await rows(ann.client, created["id"], status="failed")
    assert [i["line"] for i in failed] == [4]
    stats = ok(await ann.client.get(f"/bulk-actions/{created['id']}/statistics"))
    assert {(o["status"], o["code"]): o["contacts"] for o in stats["by_outcome"]} == {
        ("succeeded", "created"): 1,
        ("succeeded", "updated"): 1,
        ("succeeded", "duplicate_merged"): 1,
        ("failed", "invalid_phone"): 1,
    }
    person = ok(await ann.client.get(f"/contacts/{items[0]['contact_id']}"))
    assert (person["phone"], person["tags"], person["custom_fields"]) == (
        "+4915100000042", ["spring"], {"plan": "pro"},
    )  # fmt: skip
    enrolled = await db.fetchval(
        "SELECT count(*) FROM executions WHERE campaign_id = $1", target["id"]
    )
    assert enrolled == 2
    # The upload is the action's now: a second action cannot take it.
    again = await ann.client.post(
        "/bulk-actions",
        json={"name": "Again", "action": "import_contacts",
              "params": {"import_id": stored["id"]}},
    )  # fmt: skip
    assert (again.status_code, again.json()["code"]) == (409, "import_used")
    assert ok(await ann.client.get(f"/imports/{stored['id']}"))["bulk_action_id"] == created["id"]


BAD_FILES: list[tuple[str, bytes, str, int, str]] = [
    ("empty", b"", "text/csv", 422, "import_empty"),
    ("a header only", b"phone\r\n", "text/csv", 422, "import_empty"),
    ("no identifier column", b"first_name\nAnn\n", "text/csv", 422, "import_malformed"),
    ("not UTF-8", b"phone\n\xff\xfe\n", "text/csv", 422, "import_malformed"),
    ("a quote never closed", b'phone\n"+4915100000001\n', "text/csv", 422, "import_malformed"),
    ("a row too large", b"phone\n" + b"1" * 70_000 + b"\n", "text/csv", 413,
     "import_row_too_large"),
    ("a JSON line too large", b'{"phone": "' + b"1" * 70_000, "application/x-ndjson", 413,
     "import_row_too_large"),
    ("not a file type", b"phone\n1\n", "application/pdf", 415, "unsupported_media_type"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status", "code"), BAD_FILES, ids=[b[0] for b in BAD_FILES]
)
async def test_a_file_refused_whole_is_a_specific_problem_and_keeps_nothing(
    ann: Person,
    db: asyncpg.Pool[Any],
    case: str,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    response = await upload(ann.client, body, content_type)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert await db.fetchval(
        "SELECT count(*) FROM contact_imports WHERE created_by = $1", ann.user_id
    ) == 0  # fmt: skip


async def test_an_upload_over_the_limit_is_refused_as_it_streams_in(
    ann: Person, db: asyncpg.Pool[Any], live: Live
) -> None:
    """Sent in pieces without a Content-Length, so only counting the stream can stop it."""
    limit = live.settings.max_bulk_import_bytes

    async def body() -> AsyncIterator[bytes]:
        yield b"phone,note\n"
        note = "x" * 4000  # few rows: the test is about bytes, not rows
        for n in range(limit // 4000 + 10):
            yield f"+4915{n:010d},{note}\n".encode()

    response = await ann.client.post("/imports", content=body())
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")
    assert await db.fetchval(
        "SELECT count(*) FROM contact_imports WHERE created_by = $1", ann.user_id
    ) == 0  # fmt: skip


async def test_an_import_names_an_upload_of_the_callers_and_no_selection(
    ann: Person, person: PersonFactory
) -> None:
    stored = ok(await upload(ann.client, '{"telegram_username": "jsonl_lead"}\n',
                             "application/x-ndjson"), 201)  # fmt: skip
    assert stored["format"] == "jsonl"
    bob = await person("bob")
    body = {"name": "Theirs", "action": "import_contacts", "params": {"import_id": stored["id"]}}
    theirs = await bob.client.post("/bulk-actions", json=body)
    assert (theirs.status_code, theirs.json()["code"]) == (404, "import_not_found"), theirs.text
    assert (await bob.client.get(f"/imports/{stored['id']}")).status_code == 404
    lead = await contact(ann.client, "selected_lead")
    selected = await ann.client.post("/bulk-actions", json={**body, "contact_ids": [lead["id"]]})
    assert selected.status_code == 422, selected.text
    unknown = await ann.client.post(
        "/bulk-actions", json={**body, "params": {"import_id": stored["id"], "nick": "x"}}
    )
    assert unknown.status_code == 422, unknown.text


async def test_a_member_imports_contacts_they_own_and_only_into_campaigns_they_may_fill(
    organization: Organization,
) -> None:
    org = organization.id
    member = organization.member.at(org)
    others = organization.other_member.at(org)
    sender = await account(others)
    theirs = await campaign(others, "Theirs", telegram_account_id=sender["id"], flow=FLOW)
    stored = ok(await upload(member, "telegram_username\nmember_import\n"), 201)
    params = {"import_id": stored["id"], "campaign_id": theirs["id"]}
    body: dict[str, Any] = {"name": "Mine", "action": "import_contacts", "params": params}
    refused = await member.post("/bulk-actions", json=body)
    # The same answer as adding contacts to that campaign in bulk.
    lead = await contact(member, "member_lead")
    by_hand = await member.post(
        "/bulk-actions",
        json={"name": "Add", "action": "add_to_campaign", "contact_ids": [lead["id"]],
              "params": {"campaign_id": theirs["id"]}},
    )  # fmt: skip
    assert refused.status_code in (403, 404)
    assert (refused.status_code, refused.json()["code"]) == (
        by_hand.status_code, by_hand.json()["code"],
    )  # fmt: skip
    del params["campaign_id"]
    created = ok(await member.post("/bulk-actions", json=body), 201)
    await finished(member, created["id"])
    [item] = await rows(member, created["id"])
    assert item["code"] == "created"
    imported = ok(await member.get(f"/contacts/{item['contact_id']}"))
    assert imported["owner_user_id"] == str(organization.member.user_id)
    assert imported["organization_id"] == org


async def test_a_scheduled_import_is_edited_within_its_rules_and_cancelled_row_by_row(
    ann: Person,
) -> None:
    stored = ok(await upload(ann.client, "telegram_username\nlater_one\nlater_two\n"), 201)
    other = ok(await upload(ann.client, "telegram_username\nlater_three\n"), 201)
    created = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Later", "action": "import_contacts",
                  "params": {"import_id": stored["id"]}, "mode": "scheduled",
                  "start_at": "2099-01-01T00:00:00Z"},
        ),
        201,
    )  # fmt: skip
    assert created["status"] == "queued"
    swapped = await ann.client.patch(
        f"/bulk-actions/{created['id']}", json={"params": {"import_id": other["id"]}}
    )
    assert (swapped.status_code, swapped.json()["code"]) == (409, "import_not_editable")
    tagged = await ann.client.patch(
        f"/bulk-actions/{created['id']}",
        json={"params": {"import_id": stored["id"], "tags": ["later"]}},
    )
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["params"]["tags"] == ["later"]
    cancelled = ok(await ann.client.post(f"/bulk-actions/{created['id']}/cancel"))
    assert (cancelled["status"], cancelled["skipped_count"], cancelled["processed"]) == (
        "cancelled", 2, 2,
    )  # fmt: skip
    items = await rows(ann.client, created["id"])
    assert [(i["line"], i["status"], i["code"]) for i in items] == [
        (2, "skipped", "cancelled"),
        (3, "skipped", "cancelled"),
    ]
    found = ok(await ann.client.get("/contacts", params={"search": "later_"}))
    assert found["items"] == []


async def test_an_import_reads_a_time_zone_column_and_a_bad_zone_fails_its_row(
    ann: Person,
) -> None:
    """contacts.time_zone (migration 0027), as the synchronous import and contact.upsert take
    it: created and updated with it, an empty cell keeps the old one, an unknown name fails
    its row with `unknown_time_zone`."""
    moved = await contact(ann.client, "zone_moved", time_zone="Europe/Berlin")
    kept = await contact(ann.client, "zone_kept", time_zone="Asia/Tokyo")
    stored = ok(
        await upload(
            ann.client,
            "telegram_username,time_zone,first_name\n"
            "zone_new,America/New_York,\n"
            "zone_moved,Europe/Paris,\n"
            "zone_kept,,Kept\n"
            "zone_bad,Mars/Olympus,\n",
        ),
        201,
    )
    created = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Zones", "action": "import_contacts",
                  "params": {"import_id": stored["id"]}},
        ),
        201,
    )  # fmt: skip
    done = await finished(ann.client, created["id"])
    assert (done["status"], done["success_count"], done["error_count"]) == ("completed", 3, 1)
    items = await rows(ann.client, created["id"])
    assert [(i["line"], i["status"], i["code"]) for i in items] == [
        (2, "succeeded", "created"),
        (3, "succeeded", "updated"),
        (4, "succeeded", "updated"),
        (5, "failed", "unknown_time_zone"),
    ]
    assert items[3]["details"]["errors"][0]["field"] == "time_zone"
    assert "Mars/Olympus" in items[3]["message"]
    zones = {i["line"]: ok(await ann.client.get(f"/contacts/{i['contact_id']}")) for i in items[:3]}
    assert (zones[2]["time_zone"], zones[2]["effective_time_zone"]) == (
        "America/New_York", "America/New_York",
    )  # fmt: skip
    assert (zones[3]["id"], zones[3]["time_zone"]) == (moved["id"], "Europe/Paris")
    assert (zones[4]["id"], zones[4]["time_zone"], zones[4]["first_name"]) == (
        kept["id"], "Asia/Tokyo", "Kept",
    )  # fmt: skip
