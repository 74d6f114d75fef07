"""Bulk actions over contacts through HTTP (specs 002 and 003): each action and mode, the edit
rules in each status, pause, resume and cancel, restore, export, and tracking. Drip schedules
move with the services' clock (the `clock` fixture), never by sleeping."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.api.conftest import Clock, Organization, Person, PersonFactory, set_admin_view
from tests.builders import FLOW, account, add_contacts, campaign, command, ok
from tests.support import eventually

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def people(client: httpx.AsyncClient, prefix: str, count: int, **fields: Any) -> list[str]:
    ids = []
    for i in range(count):
        body = {"telegram_username": f"{prefix}{i}xx", "first_name": f"P{i}", **fields}
        ids.append(ok(await client.post("/contacts", json=body), 201)["id"])
    return ids


async def start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    return ok(await client.post("/bulk-actions", json=body), 201)  # type: ignore[no-any-return]


async def finished(client: httpx.AsyncClient, action_id: str) -> dict[str, Any]:
    async def done() -> Any:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found if found["status"] in ("completed", "cancelled", "failed") else None

    return await eventually(done)  # type: ignore[no-any-return]


async def processed(client: httpx.AsyncClient, action_id: str, count: int) -> dict[str, Any]:
    async def reached() -> Any:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found if found["processed"] >= count else None

    return await eventually(reached)  # type: ignore[no-any-return]


async def items(client: httpx.AsyncClient, action_id: str) -> dict[str, tuple[str, str]]:
    page = ok(await client.get(f"/bulk-actions/{action_id}/items", params={"limit": 1000}))
    return {i["contact_id"]: (i["status"], i["code"]) for i in page["items"]}


async def test_add_to_campaign_enrols_each_contact_once(ann: Person, db: asyncpg.Pool[Any]) -> None:
    sender = await account(ann.client)
    target = await campaign(ann.client, "Target", telegram_account_id=sender["id"], flow=FLOW)
    contacts = await people(ann.client, "enrol", 5)
    await add_contacts(ann.client, target["id"], contacts[:1])
    action = await start(
        ann.client,
        name="Enrol spring leads",
        action="add_to_campaign",
        contact_ids=contacts,
        params={"campaign_id": target["id"]},
    )
    assert (action["status"], action["name"], action["schedule"]["mode"]) == (
        "queued",
        "Enrol spring leads",
        "all_at_once",
    )
    done = await finished(ann.client, action["id"])
    assert (done["status"], done["total"], done["success_count"], done["skipped_count"]) == (
        "completed",
        5,
        4,
        1,
    )
    outcomes = await items(ann.client, action["id"])
    assert outcomes[contacts[0]] == ("skipped", "already_in_campaign")
    assert {outcomes[c] for c in contacts[1:]} == {("succeeded", "added")}
    enrolled = await db.fetchval(
        "SELECT count(*) FROM executions WHERE campaign_id = $1", target["id"]
    )
    assert enrolled == 5
    stats = ok(await ann.client.get(f"/bulk-actions/{action['id']}/statistics"))
    assert (stats["success_count"], stats["skipped_count"], stats["pending"]) == (4, 1, 0)
    assert {(o["status"], o["code"], o["contacts"]) for o in stats["by_outcome"]} == {
        ("succeeded", "added", 4),
        ("skipped", "already_in_campaign", 1),
    }


async def test_tags_by_filter_select_all_that_match(ann: Person, db: asyncpg.Pool[Any]) -> None:
    berliners = await people(ann.client, "ber", 3, tags=["lead"], custom_fields={"city": "Berlin"})
    others = await people(ann.client, "oth", 2, tags=["lead"], custom_fields={"city": "Paris"})
    vip = await start(
        ann.client,
        name="VIP Berlin",
        action="add_tags",
        params={"tags": ["vip", "berlin"]},
        filter={"tags": ["lead"], "custom_fields": {"city": "Berlin"}},
    )
    done = await finished(ann.client, vip["id"])
    assert (done["total"], done["success_count"]) == (3, 3)

    async def tags_of(ids: list[str]) -> list[list[str]]:
        rows = await db.fetch(
            "SELECT tags FROM contacts WHERE id = ANY($1::uuid[]) ORDER BY id", ids
        )
        return [sorted(r["tags"]) for r in rows]

    assert await tags_of(berliners) == [["berlin", "lead", "vip"]] * 3
    assert await tags_of(others) == [["lead"]] * 2
    removed = await start(
        ann.client,
        name="Drop vip",
        action="remove_tags",
        params={"tags": ["vip"]},
        contact_ids=berliners + others[:1],
    )
    done = await finished(ann.client, removed["id"])
    assert (done["success_count"], done["skipped_count"]) == (3, 1)
    assert (await items(ann.client, removed["id"]))[others[0]] == ("skipped", "not_tagged")
    cleared = await start(
        ann.client,
        name="Clear",
        action="remove_tags",
        params={"all": True},
        contact_ids=berliners,
    )
    await finished(ann.client, cleared["id"])
    assert await tags_of(berliners) == [[]] * 3


async def test_delete_then_restore_brings_back_contacts_and_memberships(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    sender = await account(ann.client)
    kept = await campaign(ann.client, "Kept", telegram_account_id=sender["id"], flow=FLOW)
    dropped = await campaign(ann.client, "Dropped", telegram_account_id=sender["id"], flow=FLOW)
    contacts = await people(ann.client, "del", 3)
    await add_contacts(ann.client, kept["id"], contacts)
    await add_contacts(ann.client, dropped["id"], contacts[:1])
    deletion = await start(
        ann.client, name="Clean up", action="delete_contacts", contact_ids=contacts
    )
    done = await finished(ann.client, deletion["id"])
    assert done["success_count"] == 3
    assert done["restorable_until"] is not None
    listed = ok(await ann.client.get("/contacts"))["items"]
    assert not {c["id"] for c in listed} & set(contacts)
    live = await db.fetchval(
        "SELECT count(*) FROM executions WHERE contact_id = ANY($1::uuid[]) AND deleted_at IS NULL",
        contacts,
    )
    assert live == 0  # gone from the campaigns they were in
    ok(await command(ann.client, dropped["id"], "delete"))

    restore = ok(await ann.client.post(f"/bulk-actions/{deletion['id']}/restore"), 201)
    assert (restore["action"], restore["restore_of"]) == ("restore_contacts", deletion["id"])
    restored = await finished(ann.client, restore["id"])
    assert restored["success_count"] == 3
    listed = ok(await ann.client.get("/contacts", params={"limit": 500}))["items"]
    assert set(contacts) <= {c["id"] for c in listed}
    memberships = await db.fetch(
        "SELECT campaign_id::text, count(*) FROM executions WHERE contact_id = ANY($1::uuid[])"
        " AND deleted_at IS NULL GROUP BY campaign_id",
        contacts,
    )
    assert [(r["campaign_id"], r["count"]) for r in memberships] == [(kept["id"], 3)]
    again = await ann.client.post(f"/bulk-actions/{deletion['id']}/restore")
    assert (again.status_code, again.json()["code"]) == (409, "already_restored")
    not_a_delete = await ann.client.post(f"/bulk-actions/{restore['id']}/restore")
    assert (not_a_delete.status_code, not_a_delete.json()["code"]) == (409, "not_restorable")


async def test_restore_is_refused_after_the_restore_period(ann: Person, clock: Clock) -> None:
    contacts = await people(ann.client, "late", 1)
    deletion = await start(
        ann.client, name="Old clean up", action="delete_contacts", contact_ids=contacts
    )
    await finished(ann.client, deletion["id"])
    clock.advance(timedelta(days=31))
    late = await ann.client.post(f"/bulk-actions/{deletion['id']}/restore")
    assert (late.status_code, late.json()["code"]) == (409, "restore_period_over")


async def test_export_streams_a_csv_of_the_selection(ann: Person) -> None:
    contacts = await people(
        ann.client,
        "exp",
        4,
        tags=["export"],
        custom_fields={"tier": "gold"},
        time_zone="Asia/Tokyo",
    )
    export = await start(
        ann.client, name="Gold list", action="export_contacts", filter={"tags": ["export"]}
    )
    done = await finished(ann.client, export["id"])
    assert done["export_url"] == f"/exports/{export['id']}"
    response = await ann.client.get(done["export_url"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["id"] for r in rows) == sorted(contacts)
    assert {(r["tags"], r["custom_fields"], r["time_zone"]) for r in rows} == {
        ("export", '{"tier": "gold"}', "Asia/Tokyo")
    }
    stranger = await ann.client.get(f"/exports/{uuid.uuid4()}")
    assert stranger.status_code == 404


async def test_a_members_selection_by_filter_deletes_and_exports_only_their_own(
    organization: Organization,
) -> None:
    """Issue 15, item 5: a member may delete and export only the contacts they created, so
    "select all" by a member means all of their own; an owner's means everyone's."""
    org = organization.id
    owner, member = organization.owner.at(org), organization.member.at(org)
    other = organization.other_member.at(org)
    mine = await people(member, "mfl", 2, tags=["shared"])
    theirs = await people(other, "ofl", 2, tags=["shared"])

    async def exported(client: httpx.AsyncClient) -> list[str]:
        export = await start(
            client, name="Shared", action="export_contacts", filter={"tags": ["shared"]}
        )
        done = await finished(client, export["id"])
        rows = csv.DictReader(io.StringIO((await client.get(done["export_url"])).text))
        return sorted(r["id"] for r in rows)

    assert await exported(member) == sorted(mine)
    assert await exported(owner) == sorted(mine + theirs)
    deletion = await start(
        member, name="Clean up", action="delete_contacts", filter={"tags": ["shared"]}
    )
    assert (await finished(member, deletion["id"]))["success_count"] == 2
    left = ok(await owner.get("/contacts", params={"limit": 500}))["items"]
    assert {c["id"] for c in left} & set(mine + theirs) == set(theirs)


async def test_a_contact_that_looks_like_a_formula_is_text_in_the_export(ann: Person) -> None:
    """Contacts come from imports and from strangers' profiles: a CSV opened in a spreadsheet
    must not run them (the same cells as the logs export, through the same function)."""
    hostile = '=HYPERLINK("http://x","y")'
    body = {
        "telegram_username": "formula1",
        "phone": "+4915123456789",
        "first_name": hostile,
        "last_name": "-1+1",
        "tags": ["@cmd", "ok"],
        "custom_fields": {"note": "+SUM(A1:A9)"},
    }
    mallory = ok(await ann.client.post("/contacts", json=body), 201)["id"]
    tabbed = ok(
        await ann.client.post(
            "/contacts", json={"telegram_username": "formula2", "first_name": "\t=1+1"}
        ),
        201,
    )["id"]
    export = await start(
        ann.client, name="Formulas", action="export_contacts", contact_ids=[mallory, tabbed]
    )
    done = await finished(ann.client, export["id"])
    response = await ann.client.get(done["export_url"])
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(response.text))}
    assert (rows[mallory]["first_name"], rows[mallory]["last_name"]) == ("'" + hostile, "'-1+1")
    assert rows[mallory]["tags"] == "'@cmd ok"
    assert rows[tabbed]["first_name"] == "'\t=1+1"
    # A number is not a formula: phones stay as they are, so the file imports again.
    assert rows[mallory]["phone"] == "+4915123456789"
    # Custom fields are one JSON cell, which a spreadsheet shows as text: kept as written.
    assert json.loads(rows[mallory]["custom_fields"]) == {"note": "+SUM(A1:A9)"}
    # The JSON answers keep the names as they were written.
    [item] = [
        i
        for i in ok(await ann.client.get(f"/bulk-actions/{export['id']}/items"))["items"]
        if i["contact_id"] == mallory
    ]
    assert (item["first_name"], item["last_name"]) == (hostile, "-1+1")


async def test_an_export_not_written_yet_is_not_ready(ann: Person, clock: Clock) -> None:
    await people(ann.client, "later", 1, tags=["later"])
    export = await start(
        ann.client,
        name="Tomorrow",
        action="export_contacts",
        filter={"tags": ["later"]},
        mode="scheduled",
        start_at=(clock.at + timedelta(days=1)).isoformat(),
    )
    response = await ann.client.get(f"/exports/{export['id']}")
    assert (response.status_code, response.json()["code"]) == (409, "export_not_ready")


async def test_send_message_goes_out_through_a_campaign_of_its_own(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    sender = await account(ann.client)
    contacts = await people(ann.client, "msg", 3)
    action = await start(
        ann.client,
        name="Hello all",
        action="send_message",
        contact_ids=contacts,
        params={"telegram_account_id": sender["id"], "text": "Hello {first_name}!"},
    )
    done = await finished(ann.client, action["id"])
    assert done["success_count"] == 3
    assert set((await items(ann.client, action["id"])).values()) == {
        ("succeeded", "queued_for_sending")
    }
    carrier = await db.fetchrow(
        "SELECT id, status, telegram_account_id::text AS account FROM campaigns"
        " WHERE bulk_action_id = $1",
        action["id"],
    )
    assert carrier is not None
    assert (carrier["status"], carrier["account"]) == ("active", sender["id"])
    sends = await db.fetchval(
        "SELECT count(*) FROM executions WHERE campaign_id = $1", carrier["id"]
    )
    assert sends == 3
    listed = ok(await ann.client.get("/campaign-flows"))["items"]
    assert carrier["id"] not in {c["id"] for c in listed}  # not one of the user's campaigns
    stats = ok(await ann.client.get(f"/bulk-actions/{action['id']}/statistics"))
    assert sum(stats["sends"].values()) == 3
    bad = await ann.client.post(
        "/bulk-actions",
        json={
            "name": "Bad",
            "action": "send_message",
            "contact_ids": contacts,
            "params": {"telegram_account_id": sender["id"], "text": "Hi {first_name.upper}"},
        },
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "params.text"


async def test_scheduled_mode_waits_for_its_time(ann: Person, clock: Clock) -> None:
    contacts = await people(ann.client, "sched", 2)
    action = await start(
        ann.client,
        name="At noon",
        action="add_tags",
        params={"tags": ["noon"]},
        contact_ids=contacts,
        mode="scheduled",
        start_at=(clock.at + timedelta(hours=2)).isoformat(),
    )
    assert datetime.fromisoformat(action["next_batch_at"]) == clock.at + timedelta(hours=2)
    clock.advance(timedelta(hours=1))
    assert ok(await ann.client.get(f"/bulk-actions/{action['id']}"))["status"] == "queued"
    clock.advance(timedelta(hours=1))
    done = await finished(ann.client, action["id"])
    assert (done["status"], done["success_count"]) == ("completed", 2)


def drip(batch_size: int, **extra: Any) -> dict[str, Any]:
    settings = {
        "batch_size": batch_size,
        "every": 1,
        "unit": "hours",
        "timezone": "Europe/Berlin",
        "allowed_days": [1, 2, 3, 4, 5],
        "window_start": "09:00",
        "window_end": "17:00",
    }
    return {**settings, **extra}


async def test_drip_releases_batches_every_interval_inside_the_window(
    ann: Person, clock: Clock
) -> None:
    friday = datetime(2026, 11, 27, 15, 30, tzinfo=BERLIN)
    clock.set(friday)
    contacts = await people(ann.client, "drip", 7)
    action = await start(
        ann.client,
        name="Drip",
        action="add_tags",
        params={"tags": ["dripped"]},
        contact_ids=contacts,
        mode="drip",
        drip=drip(3),
    )
    first = await processed(ann.client, action["id"], 3)
    assert (first["status"], first["batches"]) == ("processing", 1)
    assert datetime.fromisoformat(first["next_batch_at"]) == friday + timedelta(hours=1)
    clock.set(friday + timedelta(hours=1))
    second = await processed(ann.client, action["id"], 6)
    # 17:30 is past the window and the weekend is not allowed: Monday 09:00.
    monday = datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    assert datetime.fromisoformat(second["next_batch_at"]) == monday
    clock.set(datetime(2026, 11, 28, 12, 0, tzinfo=BERLIN))  # Saturday: nothing
    assert ok(await ann.client.get(f"/bulk-actions/{action['id']}"))["processed"] == 6
    clock.set(monday)
    done = await finished(ann.client, action["id"])
    assert (done["processed"], done["batches"], done["next_batch_at"]) == (7, 3, None)
    batches = ok(await ann.client.get(f"/bulk-actions/{action['id']}/items"))["items"]
    assert sorted(i["batch_number"] for i in batches) == [1, 1, 1, 2, 2, 2, 3]


async def test_edits_follow_the_status(ann: Person, clock: Clock) -> None:
    contacts = await people(ann.client, "edit", 5)
    later = clock.at + timedelta(days=1)
    action = await start(
        ann.client,
        name="Editable",
        action="add_tags",
        params={"tags": ["a"]},
        contact_ids=contacts,
        mode="drip",
        drip={"batch_size": 2, "every": 1, "unit": "hours", "start_at": later.isoformat()},
    )
    url = f"/bulk-actions/{action['id']}"
    # Queued: everything may change.
    queued = ok(
        await ann.client.patch(
            url,
            json={
                "name": "Edited",
                "params": {"tags": ["b"]},
                "contact_ids": contacts[:4],
                "every": 2,
                "unit": "hours",
                "start_at": clock.at.isoformat(),
            },
        )
    )
    assert (queued["name"], queued["params"], queued["schedule"]["every_seconds"]) == (
        "Edited",
        {"tags": ["b"]},
        7200,
    )
    assert datetime.fromisoformat(queued["next_batch_at"]) == clock.at
    running = await processed(ann.client, action["id"], 2)
    # Processing: the batch quantity only, for future batches.
    for refused in (
        {"params": {"tags": ["c"]}},
        {"every": 3, "unit": "hours"},
        {"contact_ids": contacts},
        {"name": "Again"},
    ):
        response = await ann.client.patch(url, json=refused)
        assert (response.status_code, response.json()["code"]) == (409, "bulk_action_started")
    ok(await ann.client.patch(url, json={"batch_size": 5}))
    clock.set(datetime.fromisoformat(running["next_batch_at"]))
    done = await finished(ann.client, action["id"])
    assert (done["processed"], done["batches"]) == (4, 2)  # the 2 left went in one batch
    finished_edit = await ann.client.patch(url, json={"batch_size": 1})
    assert (finished_edit.status_code, finished_edit.json()["code"]) == (
        409,
        "bulk_action_finished",
    )


async def test_pause_resume_and_cancel_take_effect_before_the_next_batch(
    ann: Person, clock: Clock
) -> None:
    contacts = await people(ann.client, "ctl", 6)
    action = await start(
        ann.client,
        name="Controlled",
        action="add_tags",
        params={"tags": ["x"]},
        contact_ids=contacts,
        mode="drip",
        drip={"batch_size": 2, "every": 1, "unit": "hours"},
    )
    url = f"/bulk-actions/{action['id']}"
    await processed(ann.client, action["id"], 2)
    paused = ok(await ann.client.post(f"{url}/pause"))
    assert paused["status"] == "paused"
    # Paused after a batch: still the batch quantity only.
    assert ok(await ann.client.patch(url, json={"batch_size": 2}))["schedule"]["batch_size"] == 2
    refused = await ann.client.patch(url, json={"params": {"tags": ["y"]}})
    assert (refused.status_code, refused.json()["code"]) == (409, "bulk_action_started")
    clock.advance(timedelta(hours=3))
    assert ok(await ann.client.get(url))["processed"] == 2  # nothing while paused
    resumed = ok(await ann.client.post(f"{url}/resume"))
    assert resumed["status"] == "processing"
    await processed(ann.client, action["id"], 4)
    cancelled = ok(await ann.client.post(f"{url}/cancel"))
    assert (cancelled["status"], cancelled["next_batch_at"]) == ("cancelled", None)
    clock.advance(timedelta(hours=5))
    final = ok(await ann.client.get(url))
    assert (final["success_count"], final["skipped_count"], final["processed"]) == (4, 2, 6)
    skipped = {v for v in (await items(ann.client, action["id"])).values() if v[0] == "skipped"}
    assert skipped == {("skipped", "cancelled")}
    too_late = await ann.client.patch(url, json={"batch_size": 3})
    assert (too_late.status_code, too_late.json()["code"]) == (409, "bulk_action_finished")
    for late in ("pause", "resume", "cancel"):
        response = await ann.client.post(f"{url}/{late}")
        assert (response.status_code, response.json()["code"]) == (409, "invalid_status")


async def test_paused_before_its_first_batch_everything_may_still_change(
    ann: Person, clock: Clock
) -> None:
    contacts = await people(ann.client, "early", 2)
    action = await start(
        ann.client,
        name="Early",
        action="add_tags",
        params={"tags": ["a"]},
        contact_ids=contacts,
        mode="scheduled",
        start_at=(clock.at + timedelta(hours=1)).isoformat(),
    )
    url = f"/bulk-actions/{action['id']}"
    assert ok(await ann.client.post(f"{url}/pause"))["status"] == "paused"
    edited = ok(await ann.client.patch(url, json={"params": {"tags": ["b"]}, "name": "Later"}))
    assert (edited["params"], edited["name"]) == ({"tags": ["b"]}, "Later")
    clock.advance(timedelta(hours=2))
    assert ok(await ann.client.get(url))["processed"] == 0  # paused: no batch
    assert ok(await ann.client.post(f"{url}/resume"))["status"] == "queued"
    done = await finished(ann.client, action["id"])
    assert (done["status"], done["success_count"]) == ("completed", 2)


async def test_every_change_of_the_schedule_is_an_event_by_whom_in_its_transaction(
    ann: Person, clock: Clock, db: asyncpg.Pool[Any]
) -> None:
    """Pause, edit, resume and cancel change the scheduled work's row and emit
    bulk_action.changed with it, naming the person who did it; a refused change emits nothing."""
    contacts = await people(ann.client, "evt", 2)
    action = await start(
        ann.client,
        name="Watched",
        action="add_tags",
        params={"tags": ["a"]},
        contact_ids=contacts,
        mode="scheduled",
        start_at=(clock.at + timedelta(hours=1)).isoformat(),
    )
    url = f"/bulk-actions/{action['id']}"
    ok(await ann.client.post(f"{url}/pause"))
    ok(await ann.client.patch(url, json={"name": "Watched closely"}))
    ok(await ann.client.post(f"{url}/resume"))
    ok(await ann.client.post(f"{url}/cancel"))
    refused = await ann.client.post(f"{url}/pause")
    assert refused.status_code == 409
    rows = await db.fetch(
        "SELECT convert_from(value, 'UTF8')::jsonb AS message FROM outbox"
        " WHERE topic = 'dripline.bulk.events' AND key = convert_to($1, 'UTF8')"
        " AND headers->>'message-type' = 'bulk_action.changed' ORDER BY id",
        action["id"],
    )
    messages = [json.loads(r["message"]) if isinstance(r["message"], str) else r["message"]
                for r in rows]  # fmt: skip
    assert [(m["payload"]["status"], m["payload"]["name"]) for m in messages] == [
        ("paused", "Watched"),
        ("paused", "Watched closely"),
        ("queued", "Watched closely"),
        ("cancelled", "Watched closely"),
    ]
    assert {m["actor"]["user_id"] for m in messages} == {str(ann.user_id)}
    assert messages[-1]["payload"]["next_batch_at"] is None  # as the cancel left the row


async def test_tracking_lists_actions_by_filter_and_by_who_may_see_them(
    organization: Organization,
) -> None:
    org = organization.id
    owner, member = organization.owner.at(org), organization.member.at(org)
    # Owners see members' actions only with admin view on (tests/api/test_bulk_visibility.py).
    await set_admin_view(organization, True)
    mine = await people(member, "trk", 2)
    tagged = await start(
        member, name="Member tags", action="add_tags", params={"tags": ["t"]}, contact_ids=mine
    )
    exported = await start(owner, name="Owner export", action="export_contacts", contact_ids=mine)
    await finished(member, tagged["id"])
    await finished(owner, exported["id"])
    everyone = ok(await owner.get("/bulk-actions"))["items"]
    assert {a["id"] for a in everyone} == {tagged["id"], exported["id"]}
    by_member = ok(
        await owner.get("/bulk-actions", params={"user": str(organization.member.user_id)})
    )
    assert [a["id"] for a in by_member["items"]] == [tagged["id"]]
    exports = ok(await owner.get("/bulk-actions", params={"action": "export_contacts"}))
    assert [a["id"] for a in exports["items"]] == [exported["id"]]
    completed = ok(
        await owner.get(
            "/bulk-actions", params={"status": "completed", "created_from": tagged["created_at"]}
        )
    )
    assert {a["id"] for a in completed["items"]} == {tagged["id"], exported["id"]}
    nothing = ok(await owner.get("/bulk-actions", params={"created_to": tagged["created_at"]}))
    assert nothing["items"] == []
    own = ok(await member.get("/bulk-actions"))["items"]
    assert [a["id"] for a in own] == [tagged["id"]]
    assert (await member.get(f"/bulk-actions/{exported['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "action": "add_tags", "params": {"tags": ["a"]}}, ""),
        ({"name": "x", "action": "add_tags", "contact_ids": [str(uuid.uuid4())]}, "params.tags"),
        (
            {
                "name": "x",
                "action": "remove_tags",
                "contact_ids": [str(uuid.uuid4())],
                "params": {"tags": ["a"], "all": True},
            },
            "params",
        ),
        (
            {
                "name": "x",
                "action": "add_tags",
                "contact_ids": [str(uuid.uuid4())],
                "params": {"tags": ["a"]},
                "mode": "drip",
            },
            "",
        ),
        (
            {
                "name": "x",
                "action": "add_tags",
                "contact_ids": [str(uuid.uuid4())],
                "params": {"tags": ["a"]},
                "mode": "drip",
                "drip": {"batch_size": 1, "every": 1, "unit": "hours", "timezone": "Mars/Base"},
            },
            "drip.timezone",
        ),
        (
            {
                "name": "x",
                "action": "add_tags",
                "contact_ids": [str(uuid.uuid4())],
                "params": {"tags": ["a"]},
                "mode": "drip",
                "drip": {"batch_size": 1, "every": 1, "unit": "hours", "allowed_days": [8]},
            },
            "drip.allowed_days",
        ),
        ({"name": "x", "action": "restore_contacts", "contact_ids": [str(uuid.uuid4())]}, "action"),
        ({"name": "", "action": "delete_contacts", "contact_ids": [str(uuid.uuid4())]}, "name"),
    ],
)
async def test_a_bad_request_is_a_specific_422(ann: Person, body: Any, field: str) -> None:
    response = await ann.client.post("/bulk-actions", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_what_the_action_points_at_must_be_the_callers(
    ann: Person, person: PersonFactory
) -> None:
    other = await person("other")
    theirs = await campaign(other.client, "Theirs")
    their_account = await account(other.client)
    contacts = await people(ann.client, "own", 1)
    to_campaign = await ann.client.post(
        "/bulk-actions",
        json={
            "name": "x",
            "action": "add_to_campaign",
            "contact_ids": contacts,
            "params": {"campaign_id": theirs["id"]},
        },
    )
    assert (to_campaign.status_code, to_campaign.json()["code"]) == (404, "campaign_not_found")
    from_account = await ann.client.post(
        "/bulk-actions",
        json={
            "name": "x",
            "action": "send_message",
            "contact_ids": contacts,
            "params": {"telegram_account_id": their_account["id"], "text": "hi"},
        },
    )
    assert from_account.status_code == 404
