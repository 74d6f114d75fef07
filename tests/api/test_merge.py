"""Merging contacts through HTTP (issue 19, item 1): the confirmation and input checks, a merge
of two contacts who share a campaign applied by the live scheduler (one execution left, the
other cancelled with `merged`, history moved, fields chosen, tags and custom fields united),
and the candidate duplicates listing with keyset pages."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import Organization, Person, PersonFactory
from tests.builders import FLOW, account, add_contacts, campaign, contact, ok
from tests.support import eventually


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def finished(client: httpx.AsyncClient, action_id: str) -> dict[str, Any]:
    async def done() -> Any:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found if found["status"] in ("completed", "cancelled", "failed") else None

    return await eventually(done, timeout_s=60)  # type: ignore[no-any-return]


async def merged(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/contacts/merge", json={"confirm": True, **body})
    action = ok(response, 202)
    assert response.headers["Location"] == f"/bulk-actions/{action['id']}"
    assert action["action"] == "merge_contacts"
    return await finished(client, action["id"])


async def test_a_merge_needs_confirmation_two_different_contacts_and_an_identifier(
    ann: Person,
) -> None:
    a = await contact(ann.client, unique("keep"))
    b = await contact(ann.client, unique("gone"))
    pair = {"master_id": a["id"], "other_id": b["id"]}
    refused = await ann.client.post("/contacts/merge", json=pair)
    assert (refused.status_code, refused.json()["code"]) == (422, "confirmation_required")
    same = await ann.client.post(
        "/contacts/merge", json={"master_id": a["id"], "other_id": a["id"], "confirm": True}
    )
    assert (same.status_code, same.json()["code"]) == (422, "validation_error")
    missing = await ann.client.post(
        "/contacts/merge", json={**pair, "other_id": str(uuid.uuid4()), "confirm": True}
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "contact_not_found")
    # choosing the other's missing username and the master's missing phone leaves no way to
    # reach the contact: refused
    phone_only = ok(await ann.client.post("/contacts", json={"phone": "+49 170 000 1111"}), 201)
    empty = await ann.client.post(
        "/contacts/merge",
        json={"master_id": a["id"], "other_id": phone_only["id"], "confirm": True,
              "fields": {"telegram_username": "other", "phone": "master"}},
    )  # fmt: skip
    assert (empty.status_code, empty.json()["code"]) == (422, "validation_error")
    assert "fields" in empty.text
    unknown = await ann.client.post(
        "/contacts/merge", json={**pair, "confirm": True, "fields": {"owner": "other"}}
    )
    assert (unknown.status_code, unknown.json()["code"]) == (422, "validation_error")


async def test_two_contacts_in_one_campaign_become_one_with_one_execution(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    master = await contact(
        ann.client, unique("master"), tags=["lead"], custom_fields={"plan": "pro", "seats": 3}
    )
    other = await contact(
        ann.client,
        unique("other"),
        first_name="Olga",
        phone="+49 151 2345 6789",
        tags=["vip"],
        custom_fields={"plan": "free", "city": "Berlin"},
        time_zone="America/Chicago",
    )
    sender = await account(ann.client)
    both = await campaign(ann.client, "Both", telegram_account_id=sender["id"], flow=FLOW)
    only_other = await campaign(ann.client, "Other", telegram_account_id=sender["id"], flow=FLOW)
    await add_contacts(ann.client, both["id"], [master["id"], other["id"]])
    await add_contacts(ann.client, only_other["id"], [other["id"]])
    # The other contact's execution in the shared campaign already messaged them: it is further
    # along, so it is the one kept (the master's, not started, is cancelled).
    now = datetime.now(UTC)
    ahead = await db.fetchval(
        "UPDATE executions SET status = 'waiting', started_at = $3, current_node_id = 'hello'"
        " WHERE campaign_id = $1 AND contact_id = $2 RETURNING id",
        uuid.UUID(both["id"]),
        uuid.UUID(other["id"]),
        now,
    )
    message = await db.fetchval(
        "INSERT INTO messages (campaign_id, execution_id, contact_id, direction, body, status,"
        " sent_at) VALUES ($1, $2, $3, 'outgoing', 'Hi Olga!', 'sent', $4) RETURNING id",
        uuid.UUID(both["id"]),
        ahead,
        uuid.UUID(other["id"]),
        now,
    )
    # Its inbox conversation points at that execution.
    talk = await db.fetchval(
        "INSERT INTO conversations (telegram_account_id, contact_id, campaign_id, execution_id,"
        " last_message_id, last_direction, last_body, last_message_at)"
        " VALUES ($1, $2, $3, $4, $5, 'outgoing', 'Hi Olga!', $6) RETURNING id",
        uuid.UUID(sender["id"]),
        uuid.UUID(other["id"]),
        uuid.UUID(both["id"]),
        ahead,
        message,
        now,
    )
    action = await merged(
        ann.client,
        {"master_id": master["id"], "other_id": other["id"], "fields": {"first_name": "other"}},
    )
    assert (action["status"], action["success_count"], action["error_count"]) == (
        "completed",
        2,
        0,
    )
    items = ok(await ann.client.get(f"/bulk-actions/{action['id']}/items"))["items"]
    assert {i["contact_id"]: i["code"] for i in items} == {
        master["id"]: "merged",
        other["id"]: "merged_into",
    }
    # The master took the chosen name, the phone and time zone it lacked, and both tags and
    # custom fields.
    kept = ok(await ann.client.get(f"/contacts/{master['id']}"))
    assert (kept["first_name"], kept["phone"], kept["telegram_username"], kept["time_zone"]) == (
        "Olga",
        "+4915123456789",
        master["telegram_username"],
        "America/Chicago",
    )
    assert kept["tags"] == ["lead", "vip"]
    assert kept["custom_fields"] == {"plan": "pro", "seats": 3, "city": "Berlin"}
    gone = await ann.client.get(f"/contacts/{other['id']}")
    assert (gone.status_code, gone.json()["code"]) == (404, "contact_not_found")
    assert await db.fetchval(
        "SELECT merged_into_id FROM contacts WHERE id = $1", uuid.UUID(other["id"])
    ) == uuid.UUID(master["id"])
    rows = await db.fetch(
        "SELECT campaign_id, contact_id, status, error_message, started_at IS NOT NULL AS started"
        " FROM executions WHERE campaign_id = ANY($1::uuid[]) ORDER BY campaign_id, contact_id",
        [uuid.UUID(both["id"]), uuid.UUID(only_other["id"])],
    )
    by = {(str(r["campaign_id"]), str(r["contact_id"])): r for r in rows}
    assert len(by) == 3
    # In the shared campaign the master now holds the progress that had messaged them ...
    mine = by[(both["id"], master["id"])]
    assert (mine["status"], mine["started"]) == ("waiting", True)
    # ... and the row left with the merged contact is the unstarted one, cancelled as merged.
    left = by[(both["id"], other["id"])]
    assert (left["status"], left["error_message"], left["started"]) == (
        "cancelled",
        "merged",
        False,
    )
    # The campaign only the other was in is the master's now.
    assert by[(only_other["id"], master["id"])]["status"] == "pending"
    moved = await db.fetchrow(
        "SELECT m.contact_id, e.contact_id AS execution_contact FROM messages m"
        " JOIN executions e ON e.id = m.execution_id WHERE m.id = $1",
        message,
    )
    assert moved is not None
    assert (str(moved["contact_id"]), str(moved["execution_contact"])) == (
        master["id"],
        master["id"],
    )
    # The conversation is the master's and follows the kept progress, as the message does.
    followed = await db.fetchrow(
        "SELECT c.contact_id, e.contact_id AS execution_contact, e.status FROM conversations c"
        " JOIN executions e ON e.id = c.execution_id WHERE c.id = $1",
        talk,
    )
    assert followed is not None
    assert (str(followed["contact_id"]), str(followed["execution_contact"])) == (
        master["id"],
        master["id"],
    )
    assert followed["status"] == "waiting"
    # A merge is irreversible: merging the merged-away contact again finds nothing.
    again = await ann.client.post(
        "/contacts/merge",
        json={"master_id": master["id"], "other_id": other["id"], "confirm": True},
    )
    assert (again.status_code, again.json()["code"]) == (404, "contact_not_found")


async def test_candidate_duplicates_are_listed_in_keyset_pages(ann: Person) -> None:
    name = unique("Dupe")
    by_name = await contact(ann.client, name)
    by_name_again = await contact(ann.client, name.lower())
    phone_a = await contact(ann.client, unique("pa"), phone="+44 20 7946 0000")
    phone_b = await contact(ann.client, unique("pb"), phone="+442079460000")
    user_a = await contact(ann.client, unique("ua"), telegram_user_id=777000111)
    user_b = await contact(ann.client, unique("ub"), telegram_user_id=777000111)
    await contact(ann.client, unique("alone"))
    seen: dict[frozenset[str], list[str]] = {}
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = ok(await ann.client.get("/contacts/duplicates", params=params))
        pages += 1
        for pair in page["items"]:
            key = frozenset({pair["first"]["id"], pair["second"]["id"]})
            assert key not in seen  # no pair twice across pages
            seen[key] = pair["matched_on"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == {
        frozenset({by_name["id"], by_name_again["id"]}): ["telegram_username"],
        frozenset({phone_a["id"], phone_b["id"]}): ["phone"],
        frozenset({user_a["id"], user_b["id"]}): ["telegram_user_id"],
    }
    assert pages == 3
    bad = await ann.client.get("/contacts/duplicates", params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_cursor")


async def test_a_merge_while_a_send_is_in_flight_changes_nothing(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    master = await contact(ann.client, unique("busy_master"))
    other = await contact(ann.client, unique("busy_other"), tags=["x"])
    sender = await account(ann.client)
    target = await campaign(ann.client, "Busy", telegram_account_id=sender["id"], flow=FLOW)
    await add_contacts(ann.client, target["id"], [master["id"], other["id"]])
    # The dispatcher holds the other's execution: its send may be on its way.
    await db.execute(
        "UPDATE executions SET lease_until = now() + interval '1 hour'"
        " WHERE campaign_id = $1 AND contact_id = $2",
        uuid.UUID(target["id"]),
        uuid.UUID(other["id"]),
    )
    action = await merged(ann.client, {"master_id": master["id"], "other_id": other["id"]})
    assert (action["status"], action["error_count"]) == ("completed", 2)
    items = ok(await ann.client.get(f"/bulk-actions/{action['id']}/items"))["items"]
    assert {i["code"] for i in items} == {"send_in_flight"}
    # Nothing moved: both contacts are live, each with their own execution.
    assert ok(await ann.client.get(f"/contacts/{other['id']}"))["tags"] == ["x"]
    assert ok(await ann.client.get(f"/contacts/{master['id']}"))["tags"] == []
    rows = await db.fetch(
        "SELECT contact_id::text, status FROM executions WHERE campaign_id = $1",
        uuid.UUID(target["id"]),
    )
    assert {r["contact_id"]: r["status"] for r in rows} == {
        master["id"]: "pending",
        other["id"]: "pending",
    }


async def test_a_merge_moves_the_other_contacts_conversations_and_joins_shared_ones(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    """Issue 19, item 1: the other contact's inbox conversations become the master's; on an
    account where both had one, the two are joined (the latest message, the latest reply, the
    unread counts added) into the master's and the other's row is gone."""
    master = await contact(ann.client, unique("conv_master"))
    other = await contact(ann.client, unique("conv_other"))
    shared = await account(ann.client, "Shared")
    own = await account(ann.client, "Only other")
    early, late = datetime(2026, 1, 1, 9, tzinfo=UTC), datetime(2026, 1, 2, 9, tzinfo=UTC)
    insert = (
        "INSERT INTO conversations (telegram_account_id, contact_id, last_direction, last_body,"
        " last_message_at, last_reply_at, unread_count, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id"
    )
    mine = await db.fetchval(
        insert, uuid.UUID(shared["id"]), uuid.UUID(master["id"]), "outgoing", "Hi from us",
        early, None, 1, early,
    )  # fmt: skip
    theirs = await db.fetchval(
        insert, uuid.UUID(shared["id"]), uuid.UUID(other["id"]), "incoming", "Sounds good",
        late, late, 2, late,
    )  # fmt: skip
    elsewhere = await db.fetchval(
        insert, uuid.UUID(own["id"]), uuid.UUID(other["id"]), "incoming", "Hello?",
        early, early, 3, early,
    )  # fmt: skip
    action = await merged(ann.client, {"master_id": master["id"], "other_id": other["id"]})
    assert (action["status"], action["success_count"]) == ("completed", 2)
    rows = await db.fetch(
        "SELECT id, telegram_account_id::text AS account, contact_id::text AS contact,"
        " last_direction, last_body, last_message_at, last_reply_at, unread_count, created_at"
        " FROM conversations WHERE contact_id = ANY($1::uuid[])",
        [uuid.UUID(master["id"]), uuid.UUID(other["id"])],
    )
    by_account = {r["account"]: r for r in rows}
    assert len(rows) == 2
    assert {r["contact"] for r in rows} == {master["id"]}
    joined = by_account[shared["id"]]
    assert joined["id"] == mine  # the master's row is kept, the other's joined into it
    assert (joined["last_direction"], joined["last_body"], joined["last_message_at"]) == (
        "incoming",
        "Sounds good",
        late,
    )
    assert (joined["last_reply_at"], joined["unread_count"], joined["created_at"]) == (
        late,
        3,
        early,
    )
    assert await db.fetchval("SELECT count(*) FROM conversations WHERE id = $1", theirs) == 0
    assert by_account[own["id"]]["id"] == elsewhere  # moved as it was
    assert by_account[own["id"]]["unread_count"] == 3
    details = await db.fetchval(
        "SELECT details FROM bulk_action_items WHERE bulk_action_id = $1 AND contact_id = $2",
        uuid.UUID(action["id"]),
        uuid.UUID(master["id"]),
    )
    recorded = json.loads(details) if isinstance(details, str) else details
    assert (recorded["conversations_moved"], recorded["conversations_joined"]) == (1, 1)


async def test_merge_duplicates_checks_its_pairs_before_recording_anything(
    ann: Person,
) -> None:
    a, b, c = [await contact(ann.client, unique(n)) for n in ("dup_a", "dup_b", "dup_c")]
    body: dict[str, Any] = {"pairs": [{"master_id": a["id"], "other_id": b["id"]}]}

    async def refused(extra: dict[str, Any]) -> tuple[int, str, str]:
        response = await ann.client.post("/contacts/merge-duplicates", json={**body, **extra})
        return response.status_code, response.json()["code"], response.text

    status, code, _ = await refused({})
    assert (status, code) == (422, "confirmation_required")
    cases: list[tuple[dict[str, Any], int, str, str]] = [
        ({"pairs": [{"master_id": a["id"], "other_id": a["id"]}]}, 422, "validation_error",
         "pairs.0.other_id"),
        ({"pairs": [{"master_id": a["id"], "other_id": b["id"]},
                    {"master_id": c["id"], "other_id": b["id"]}]}, 422, "validation_error",
         "pairs.1"),
        ({"pairs": [{"master_id": a["id"], "other_id": b["id"], "fields": {"owner": "other"}}]},
         422, "validation_error", "pairs.0.fields.owner"),
        ({"pairs": [{"master_id": a["id"], "other_id": str(uuid.uuid4())}]}, 404,
         "contact_not_found", ""),
        ({"pairs": []}, 422, "validation_error", "pairs"),
        ({"mode": "drip"}, 422, "validation_error", "drip"),
        ({"mode": "scheduled"}, 422, "validation_error", "start_at"),
    ]  # fmt: skip
    for extra, want_status, want_code, mentioned in cases:
        status, code, text = await refused({"confirm": True, **extra})
        assert (status, code) == (want_status, want_code), (extra, text)
        assert mentioned in text
    # Nothing was recorded, and a single merge cannot be dripped (a pair is one batch).
    assert ok(await ann.client.get("/bulk-actions"))["items"] == []
    dripped = await ann.client.post(
        "/contacts/merge",
        json={"master_id": a["id"], "other_id": b["id"], "confirm": True, "mode": "drip"},
    )
    assert dripped.status_code == 422, dripped.text


async def test_merge_duplicates_moves_each_pairs_history_and_reports_it_on_the_master(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    """Two confirmed pairs in one campaign: each pair leaves one execution (the other's
    cancelled as merged), and each master's item names its pair."""
    sender = await account(ann.client)
    target = await campaign(ann.client, "Both", telegram_account_id=sender["id"], flow=FLOW)
    pairs = []
    for n in (1, 2):
        phone = f"+49 151 2000 00{n}{n}"
        master = await contact(ann.client, unique(f"keep{n}"), phone=phone, tags=["lead"])
        other = await contact(ann.client, unique(f"gone{n}"), phone=phone, tags=["vip"])
        pairs.append((master["id"], other["id"]))
    await add_contacts(ann.client, target["id"], [i for p in pairs for i in p])
    response = await ann.client.post(
        "/contacts/merge-duplicates",
        json={"confirm": True, "tags": "master",
              "pairs": [{"master_id": m, "other_id": o} for m, o in pairs]},
    )  # fmt: skip
    action = ok(response, 202)
    assert response.headers["Location"] == f"/bulk-actions/{action['id']}"
    assert (action["action"], action["name"]) == ("merge_contacts", "Merge duplicates")
    done = await finished(ann.client, action["id"])
    assert (done["status"], done["total"], done["success_count"]) == ("completed", 2, 2)
    items = ok(await ann.client.get(f"/bulk-actions/{action['id']}/items"))["items"]
    assert {i["contact_id"]: (i["code"], i["details"]["other_id"]) for i in items} == {
        m: ("merged", o) for m, o in pairs
    }
    for master_id, other_id in pairs:
        kept = ok(await ann.client.get(f"/contacts/{master_id}"))
        assert kept["tags"] == ["lead"]  # tags: master
        assert (await ann.client.get(f"/contacts/{other_id}")).status_code == 404
    rows = await db.fetch(
        "SELECT contact_id, status, error_message FROM executions WHERE campaign_id = $1",
        uuid.UUID(target["id"]),
    )
    by = {str(r["contact_id"]): (r["status"], r["error_message"]) for r in rows}
    for master_id, other_id in pairs:
        assert by[master_id][0] == "pending"
        assert by[other_id] == ("cancelled", "merged")


async def test_a_member_merges_duplicates_only_when_every_contact_is_their_own(
    organization: Organization,
) -> None:
    """Item 6: merging across owners is for owners and admins. One pair of the member's own
    and one pair that mixes owners refuse the whole request; an admin may merge it."""
    org = organization.id
    member = organization.member.at(org)
    other = organization.other_member.at(org)
    mine = [await contact(member, unique(f"mine{n}")) for n in range(3)]
    theirs = await contact(other, unique("theirs"))
    pairs = [
        {"master_id": mine[0]["id"], "other_id": mine[1]["id"]},
        {"master_id": mine[2]["id"], "other_id": theirs["id"]},
    ]
    body = {"pairs": pairs, "confirm": True}
    refused = await member.post("/contacts/merge-duplicates", json=body)
    assert (refused.status_code, refused.json()["code"]) == (403, "merge_not_own")
    single = await member.post("/contacts/merge", json={**pairs[1], "confirm": True})
    assert (single.status_code, single.json()["code"]) == (403, "merge_not_own")
    own = ok(
        await member.post("/contacts/merge-duplicates", json={**body, "pairs": pairs[:1]}), 202
    )
    assert (await finished(member, own["id"]))["success_count"] == 1
    admin = organization.admin.at(org)
    across = ok(
        await admin.post("/contacts/merge-duplicates", json={**body, "pairs": pairs[1:]}), 202
    )
    assert (await finished(admin, across["id"]))["success_count"] == 1
