"""The Logs tab and the activity feed through HTTP: what a run writes, each filter, search by
contact name and by message text, keyset pages, exports equal to the pages, visibility, 422s.

A real sender runs for the first test; the others seed execution_logs directly (as the sender's
own queries write them, contact_text included), since they need many entries in known shapes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from dripline.processes import ServiceProcess
from services.api import cursors
from tests.api.conftest import Live, Organization, Person, PersonFactory, set_admin_view
from tests.builders import FLOW, add_contacts, campaign, contact, ok
from tests.support import eventually

SEED = """
INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                            node_type, event, status, message, details, created_at)
SELECT $1, l.execution_id, e.contact_id,
       log_contact_text(c.first_name, c.last_name, c.telegram_username), l.node_id, l.node_type,
       l.event, l.status, l.message, l.details::jsonb, l.created_at
FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
            $9::timestamptz[]) WITH ORDINALITY
     AS l (execution_id, node_id, node_type, event, status, message, details, created_at, n)
JOIN executions e ON e.id = l.execution_id
JOIN contacts c ON c.id = e.contact_id
ORDER BY l.n
"""
BASE = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def executions(db: asyncpg.Pool[Any], campaign_id: str, contact_ids: list[str]) -> list[UUID]:
    rows = await db.fetch(
        "INSERT INTO executions (campaign_id, contact_id, status)"
        " SELECT $1, unnest($2::uuid[]), 'completed' RETURNING id, contact_id",
        UUID(campaign_id),
        [UUID(c) for c in contact_ids],
    )
    by_contact = {row["contact_id"]: row["id"] for row in rows}
    return [by_contact[UUID(c)] for c in contact_ids]


Entry = tuple[UUID, str, str, str, str, str | None, dict[str, Any], datetime]


NODE_TYPES = {"split": "ab_split", "hello": "send_message", "wait": "wait_for_reply", "end": "end",
              "x": "delay"}  # fmt: skip


def entry(
    execution: UUID,
    node_id: str,
    event: str,
    message: str,
    at: datetime,
    *,
    node_type: str | None = None,
    status: str = "ok",
    details: dict[str, Any] | None = None,
) -> Entry:
    node_type = node_type or NODE_TYPES[node_id]
    return (execution, node_id, node_type, event, status, message, details or {}, at)


async def seed(db: asyncpg.Pool[Any], campaign_id: str, entries: Sequence[Entry]) -> None:
    columns = list(zip(*entries, strict=True))
    columns[6] = tuple(json.dumps(d) for d in columns[6])
    await db.execute(SEED, UUID(campaign_id), *columns)


async def pages(
    client: httpx.AsyncClient, path: str, params: dict[str, Any] | None = None, limit: int = 500
) -> list[dict[str, Any]]:
    """Every item of a list, page by page."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query: dict[str, Any] = {**(params or {}), "limit": limit}
        if cursor:
            query["cursor"] = cursor
        page = ok(await client.get(path, params=query))
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


@dataclass
class Seeded:
    campaign_id: str
    ada: UUID  # execution ids
    grace: UUID
    alan: UUID

    @property
    def logs(self) -> str:
        return f"/campaign-flows/{self.campaign_id}/logs"


@pytest.fixture
async def seeded(ann: Person, db: asyncpg.Pool[Any]) -> Seeded:
    """Three contacts' runs: Ada replies, Grace reads and says no, Alan's send fails."""
    client = ann.client
    created = await campaign(client, "Logged")
    people = [
        await contact(client, "ada_l", first_name="Ada", last_name="Lovelace"),
        await contact(client, "ghopper", first_name="Grace", last_name="Hopper"),
        await contact(client, "aturing", first_name="Alan", last_name="Turing"),
    ]
    ada, grace, alan = await executions(db, created["id"], [p["id"] for p in people])
    t = [BASE + timedelta(minutes=i) for i in range(20)]
    read = {"via": "read"}
    await seed(
        db,
        created["id"],
        [
            entry(ada, "split", "node_executed", "variant A", t[0]),
            entry(ada, "hello", "message_sent", "Hi Ada, our spring webinar: 100% free", t[1]),
            entry(ada, "hello", "delivery_confirmed", "read", t[2], details=read),
            entry(ada, "wait", "node_executed", "waiting for a reply", t[3]),
            entry(ada, "wait", "reply_received", "Tell me about pricing", t[4]),
            entry(ada, "wait", "node_executed", "replied", t[5]),
            entry(grace, "split", "node_executed", "variant B", t[6]),
            entry(grace, "hello", "message_sent", "Hi Grace, our spring webinar: 1000 seats", t[7]),
            entry(grace, "hello", "delivery_confirmed", "read", t[8], details=read),
            entry(grace, "wait", "reply_received", "Not interested", t[9]),
            entry(grace, "end", "node_executed", "end", t[10]),
            entry(alan, "split", "node_executed", "variant A", t[11]),
            # As the sender logs a failed send: at the send node, with its type.
            entry(alan, "hello", "execution_failed", "privacy restricted", t[12],
                  status="failed"),
        ],
    )  # fmt: skip
    return Seeded(created["id"], ada, grace, alan)


def events(items: list[dict[str, Any]]) -> list[tuple[str | None, str, str | None]]:
    return [(item["contact"]["name"], item["event"], item["message"]) for item in items]


async def test_a_run_is_logged_and_its_important_entries_make_the_activity_feed(
    live: Live, person: PersonFactory
) -> None:
    """Through the real sender and the simulated Telegram: sends, a read, a reply, a failure."""
    sender = ServiceProcess("sender", live.settings)
    sender.start()
    try:
        await sender.wait_healthy()
        await _run_and_check(await person("runner"))
    finally:
        code = sender.stop()
    assert code == 0, sender.output()[-3000:]


async def _run_and_check(runner: Person) -> None:
    client = runner.client
    simulation = {
        "contacts": {
            "ada_runs": {"read_after_s": 0.2, "reply_after_s": 0.5},
            "ghost_runs": {"deleted": True},
        }
    }
    account = ok(
        await client.post(
            "/telegram-accounts",
            json={
                "display_name": "Sim",
                "simulation": simulation,
                "pacing": {"min_gap_s": 0, "jitter_s": 0},
            },
        ),
        201,
    )
    created = await campaign(client, "Run", telegram_account_id=account["id"], flow=FLOW)
    ada = await contact(client, "ada_runs", first_name="Ada", last_name="Runs")
    ghost = await contact(client, "ghost_runs", first_name="Gone")
    await add_contacts(client, created["id"], [ada["id"], ghost["id"]])
    ok(await client.post(f"/campaign-flows/{created['id']}/launch"))
    path = f"/campaign-flows/{created['id']}"

    async def finished() -> list[dict[str, Any]] | None:
        items = ok(await client.get(f"{path}/logs"))["items"]
        done = {(i["contact"]["name"], i["event"], i["node_id"]) for i in items}
        wanted = {("Ada Runs", "node_executed", "end"), ("Gone", "execution_failed", "hello")}
        return items if wanted <= done else None

    # Generous: under the parallel suite the new sender may wait for its consumer group to hand
    # it the account's partition (a stopped sender of an earlier test may still hold it).
    items = await eventually(finished, timeout_s=150)
    assert all(i["execution_id"] for i in items)
    chronological = [
        (i["event"], i["node_id"], i["node_type"], i["message"])
        for i in reversed(items)
        if i["contact"]["id"] == ada["id"]
    ]
    # The read is timed by Telegram and the step's entries by the sender: only these orders are
    # fixed.
    assert chronological[0] == ("message_sent", "hello", "send_message", "Hi Ada!")
    assert chronological[-3:] == [
        ("reply_received", "wait", "wait_for_reply", "Thanks, sounds good"),
        ("node_executed", "wait", "wait_for_reply", "replied"),
        ("node_executed", "end", "end", "end"),
    ]
    assert sorted(chronological[1:3]) == [
        ("delivery_confirmed", "hello", "send_message", "read"),
        ("node_executed", "wait", "wait_for_reply", "waiting for a reply"),
    ]
    failed = [i for i in items if i["event"] == "execution_failed"]
    assert [(f["contact"]["name"], f["status"]) for f in failed] == [("Gone", "failed")]
    assert not [
        i for i in items if i["contact"]["name"] == "Gone" and i["event"] != "execution_failed"
    ]
    searched = ok(await client.get(f"{path}/logs", params={"search": "sounds good"}))["items"]
    assert [(i["contact"]["name"], i["event"]) for i in searched] == [
        ("Ada Runs", "reply_received")
    ]

    async def feed() -> list[dict[str, Any]] | None:
        found = ok(await client.get(f"{path}/activities"))["items"]
        # The campaign's own events come from the stats service, a moment later.
        campaign_events = [a for a in found if a["execution_id"] is None]
        return found if campaign_events else None

    activities = await eventually(feed, timeout_s=30)
    stamps = [a["occurred_at"] for a in activities]
    assert stamps == sorted(stamps, reverse=True)
    by_type = {(a["type"], a["event"]) for a in activities}
    assert {
        ("message_sent", "message_sent"),
        ("delivery_confirmed", "delivery_confirmed"),
        ("response_detected", "reply_received"),
        ("campaign_activity", "execution_failed"),
    } <= by_type
    assert all(a["type"] == "campaign_activity" for a in activities if a["execution_id"] is None)
    sent = next(a for a in activities if a["type"] == "message_sent")
    assert sent["contact"] == {"id": ada["id"], "name": "Ada Runs"}
    assert sent["summary"] == 'Message sent to Ada Runs: "Hi Ada!"'
    assert all(a["event"] != "node_executed" for a in activities)


async def test_the_list_is_newest_first_with_contacts_and_every_field(
    ann: Person, seeded: Seeded, db: asyncpg.Pool[Any]
) -> None:
    items = ok(await ann.client.get(seeded.logs))["items"]
    stored = await db.fetch(
        "SELECT id FROM execution_logs WHERE campaign_id = $1 ORDER BY created_at DESC, id DESC",
        UUID(seeded.campaign_id),
    )
    assert [i["id"] for i in items] == [r["id"] for r in stored]
    assert len(items) == 13
    newest = items[0]
    assert newest["event"] == "execution_failed"
    assert newest["status"] == "failed"
    assert newest["executed_at"] == "2030-01-01T09:12:00Z"
    assert newest["execution_id"] == str(seeded.alan)
    assert newest["contact"]["name"] == "Alan Turing"
    assert (newest["node_id"], newest["node_type"]) == ("hello", "send_message")
    delivered = next(i for i in items if i["event"] == "delivery_confirmed")
    assert delivered["details"] == {"via": "read"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"node_type": "send_message"},  # the failed send too: it is logged at its node
            [
                ("Alan Turing", "execution_failed", "privacy restricted"),
                ("Grace Hopper", "delivery_confirmed", "read"),
                ("Grace Hopper", "message_sent", "Hi Grace, our spring webinar: 1000 seats"),
                ("Ada Lovelace", "delivery_confirmed", "read"),
                ("Ada Lovelace", "message_sent", "Hi Ada, our spring webinar: 100% free"),
            ],
        ),
        (
            {"node_type": ["end", "ab_split"], "status": "ok"},
            [
                ("Alan Turing", "node_executed", "variant A"),
                ("Grace Hopper", "node_executed", "end"),
                ("Grace Hopper", "node_executed", "variant B"),
                ("Ada Lovelace", "node_executed", "variant A"),
            ],
        ),
        ({"status": "failed"}, [("Alan Turing", "execution_failed", "privacy restricted")]),
        (
            {"event": "reply_received"},
            [
                ("Grace Hopper", "reply_received", "Not interested"),
                ("Ada Lovelace", "reply_received", "Tell me about pricing"),
            ],
        ),
        (
            {"event": ["reply_received", "execution_failed"], "node_type": "wait_for_reply"},
            [
                ("Grace Hopper", "reply_received", "Not interested"),
                ("Ada Lovelace", "reply_received", "Tell me about pricing"),
            ],
        ),
        # search: the contact's first name, last name or username, any case
        ({"search": "LOVELACE", "event": "message_sent"}, [
            ("Ada Lovelace", "message_sent", "Hi Ada, our spring webinar: 100% free")]),
        ({"search": "Grace Hop", "node_type": "end"}, [("Grace Hopper", "node_executed", "end")]),
        ({"q": "@aturing"}, [
            ("Alan Turing", "execution_failed", "privacy restricted"),
            ("Alan Turing", "node_executed", "variant A"),
        ]),
        # search: the message text; % and _ are plain characters
        ({"search": "pricing"}, [("Ada Lovelace", "reply_received", "Tell me about pricing")]),
        ({"search": "100%"}, [
            ("Ada Lovelace", "message_sent", "Hi Ada, our spring webinar: 100% free")]),
        ({"search": "spring webinar"}, [
            ("Grace Hopper", "message_sent", "Hi Grace, our spring webinar: 1000 seats"),
            ("Ada Lovelace", "message_sent", "Hi Ada, our spring webinar: 100% free"),
        ]),
        ({"search": "hopper", "q": "hopper", "status": "failed"}, []),
        ({"search": "nobody-here"}, []),
    ],
)  # fmt: skip
async def test_filters_and_search(
    ann: Person, seeded: Seeded, params: dict[str, Any], expected: list[tuple[str, str, str]]
) -> None:
    assert events(await pages(ann.client, seeded.logs, params)) == expected


async def test_the_execution_filter(ann: Person, seeded: Seeded) -> None:
    items = await pages(ann.client, seeded.logs, {"execution_id": str(seeded.grace)})
    assert [i["message"] for i in items] == [
        "end",
        "Not interested",
        "read",
        "Hi Grace, our spring webinar: 1000 seats",
        "variant B",
    ]
    assert {i["execution_id"] for i in items} == {str(seeded.grace)}
    other = await pages(ann.client, seeded.logs, {"execution_id": str(seeded.ada)}, limit=2)
    assert len(other) == 6


@pytest.fixture
async def many(ann: Person, db: asyncpg.Pool[Any]) -> Seeded:
    """12,001 entries of three executions, three to a millisecond (ties across pages), with
    newlines, quotes and commas in every message."""
    created = await campaign(ann.client, "Many")
    people = [(await contact(ann.client, f"many{i}", last_name=f"Many{i}"))["id"] for i in range(3)]
    ids = await executions(db, created["id"], people)
    await db.execute(
        """
        INSERT INTO execution_logs (campaign_id, execution_id, contact_id, contact_text, node_id,
                                    node_type, event, status, message, created_at)
        SELECT $1, e.id, e.contact_id,
               log_contact_text(c.first_name, c.last_name, c.telegram_username),
               'n' || n % 7, (ARRAY['send_message', 'delay', 'end'])[1 + n % 3],
               CASE WHEN n % 5 = 0 THEN 'message_sent' ELSE 'node_executed' END,
               CASE WHEN n % 11 = 0 THEN 'failed' ELSE 'ok' END,
               'entry ' || n || E'\nsecond line, "quoted", comma',
               $3::timestamptz - (n / 3) * interval '1 ms'
        FROM generate_series(1, 12001) AS n
        JOIN executions e ON e.id = ($2::uuid[])[1 + n % 3]
        JOIN contacts c ON c.id = e.contact_id
        """,
        UUID(created["id"]),
        ids,
        BASE,
    )
    return Seeded(created["id"], *ids)


async def test_keyset_pages_have_no_duplicates_or_gaps(
    ann: Person, many: Seeded, db: asyncpg.Pool[Any]
) -> None:
    stored = [
        r["id"]
        for r in await db.fetch(
            "SELECT id FROM execution_logs WHERE campaign_id = $1"
            " ORDER BY created_at DESC, id DESC",
            UUID(many.campaign_id),
        )
    ]
    assert len(stored) == 12001
    assert [i["id"] for i in await pages(ann.client, many.logs)] == stored
    filtered = [
        r["id"]
        for r in await db.fetch(
            "SELECT id FROM execution_logs WHERE campaign_id = $1 AND event = 'message_sent'"
            " AND status = 'failed' ORDER BY created_at DESC, id DESC",
            UUID(many.campaign_id),
        )
    ]
    params = {"event": "message_sent", "status": "failed"}
    assert [i["id"] for i in await pages(ann.client, many.logs, params, limit=7)] == filtered
    # A cursor is a position: it goes on from there whatever page size comes next.
    first = ok(await ann.client.get(many.logs, params={"limit": 3}))
    rest = ok(await ann.client.get(many.logs, params={"limit": 4, "cursor": first["next_cursor"]}))
    assert [i["id"] for i in first["items"] + rest["items"]] == stored[:7]


def csv_items(text: str) -> list[dict[str, Any]]:
    """CSV rows in the list's shape (empty cells are nulls)."""
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    return [
        {
            "id": int(row["id"]),
            "executed_at": row["executed_at"],
            "execution_id": row["execution_id"] or None,
            "contact": {"id": row["contact_id"], "name": row["contact_name"] or None}
            if row["contact_id"]
            else None,
            "node_id": row["node_id"] or None,
            "node_type": row["node_type"] or None,
            "event": row["event"],
            "status": row["status"],
            "message": row["message"] or None,
            "details": json.loads(row["details"]),
        }
        for row in rows
    ]


@pytest.mark.parametrize("params", [{}, {"status": "failed", "node_type": "send_message"}])
async def test_exports_equal_the_pages(ann: Person, many: Seeded, params: dict[str, Any]) -> None:
    listed = await pages(ann.client, many.logs, params)
    exported = await ann.client.get(f"{many.logs}/export", params={**params, "format": "csv"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = exported.headers["content-disposition"]
    assert disposition.startswith(f'attachment; filename="campaign-{many.campaign_id}-logs-')
    assert disposition.endswith('.csv"')
    assert exported.text.splitlines()[0] == (
        "id,executed_at,execution_id,contact_id,contact_name,node_id,node_type,event,status,"
        "message,details"
    )
    assert csv_items(exported.text) == listed
    lines = await ann.client.get(f"{many.logs}/export", params={**params, "format": "jsonl"})
    assert lines.status_code == 200, lines.text
    assert lines.headers["content-type"] == "application/x-ndjson"
    assert lines.headers["content-disposition"].endswith('.jsonl"')
    assert [json.loads(line) for line in lines.text.splitlines()] == listed


async def test_an_abandoned_export_leaves_no_connection_behind(ann: Person, many: Seeded) -> None:
    # More abandoned exports than the api's pool has connections (db_pool_max 5): a leak would
    # leave the last requests waiting for one.
    for export_format in ("csv", "jsonl") * 4:
        params = {"format": export_format}
        async with ann.client.stream("GET", f"{many.logs}/export", params=params) as response:
            assert response.status_code == 200
            async for _ in response.aiter_bytes():
                break
    assert len(ok(await ann.client.get(many.logs, params={"limit": 500}))["items"]) == 500


async def test_an_export_of_nothing_is_a_header_or_empty(ann: Person, seeded: Seeded) -> None:
    path = f"{seeded.logs}/export"
    empty = {"search": "nobody-here"}
    assert (await ann.client.get(path, params={**empty, "format": "csv"})).text.count("\n") == 1
    assert (await ann.client.get(path, params={**empty, "format": "jsonl"})).text == ""
    searched = await ann.client.get(path, params={"q": "pricing", "format": "jsonl"})
    assert [json.loads(line)["message"] for line in searched.text.splitlines()] == [
        "Tell me about pricing"
    ]


async def test_the_activity_feed_is_the_newest_twenty_that_matter(
    ann: Person, seeded: Seeded, db: asyncpg.Pool[Any]
) -> None:
    feed_path = f"/campaign-flows/{seeded.campaign_id}/activities"
    await db.execute(
        "INSERT INTO campaign_activities (campaign_id, message_id, type, summary, occurred_at)"
        " VALUES ($1, gen_random_uuid(), 'campaign.status_changed',"
        " 'Status changed from draft to active', $2)",
        UUID(seeded.campaign_id),
        BASE + timedelta(seconds=30),
    )
    feed = ok(await ann.client.get(feed_path))["items"]
    assert [(a["type"], a["event"], a["summary"]) for a in feed] == [
        ("campaign_activity", "execution_failed",
         "Execution for Alan Turing failed at node hello: privacy restricted"),
        ("response_detected", "reply_received", 'Grace Hopper replied: "Not interested"'),
        ("delivery_confirmed", "delivery_confirmed",
         "Message to Grace Hopper delivered (confirmed by a read)"),
        ("message_sent", "message_sent",
         'Message sent to Grace Hopper: "Hi Grace, our spring webinar: 1000 seats"'),
        ("response_detected", "reply_received", 'Ada Lovelace replied: "Tell me about pricing"'),
        ("delivery_confirmed", "delivery_confirmed",
         "Message to Ada Lovelace delivered (confirmed by a read)"),
        ("message_sent", "message_sent",
         'Message sent to Ada Lovelace: "Hi Ada, our spring webinar: 100% free"'),
        ("campaign_activity", "campaign.status_changed", "Status changed from draft to active"),
    ]  # fmt: skip
    assert feed[0]["contact"]["name"] == "Alan Turing"
    assert feed[0]["execution_id"] == str(seeded.alan)
    assert feed[-1]["contact"] is None
    assert feed[-1]["occurred_at"] == "2030-01-01T09:00:30Z"
    # Only the newest 20, however many there are.
    later = BASE + timedelta(hours=1)
    again = [
        entry(seeded.ada, "hello", "message_sent", f"again {i}", later + timedelta(seconds=i))
        for i in range(30)
    ]
    unimportant = entry(seeded.ada, "x", "node_executed", "wait", later + timedelta(hours=1))
    await seed(db, seeded.campaign_id, [*again, unimportant])
    feed = ok(await ann.client.get(feed_path))["items"]
    assert [a["summary"].split('"')[1] for a in feed] == [f"again {i}" for i in range(29, 9, -1)]
    assert len(ok(await ann.client.get(feed_path, params={"limit": 5}))["items"]) == 5


async def test_only_those_who_may_view_the_campaign_see_its_logs(
    organization: Organization, person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    org = organization.id
    member = organization.member.at(org)
    created = await campaign(member, "Member's")
    people = [(await contact(member, "seen"))["id"]]
    (execution,) = await executions(db, created["id"], people)
    await seed(
        db,
        created["id"],
        [(execution, "hello", "send_message", "message_sent", "ok", "Hi", {}, BASE)],
    )
    base = f"/campaign-flows/{created['id']}"
    paths = [f"{base}/logs", f"{base}/logs/export?format=csv", f"{base}/activities"]

    async def statuses(client: httpx.AsyncClient) -> list[int]:
        return [(await client.get(path)).status_code for path in paths]

    assert await statuses(member) == [200, 200, 200]
    # Another member, and the owner and admin while admin view is off: not found.
    assert await statuses(organization.other_member.at(org)) == [404, 404, 404]
    assert await statuses(organization.owner.at(org)) == [404, 404, 404]
    await set_admin_view(organization, True)
    assert await statuses(organization.owner.at(org)) == [200, 200, 200]
    assert await statuses(organization.admin.at(org)) == [200, 200, 200]
    assert await statuses(organization.other_member.at(org)) == [404, 404, 404]
    # Another organization, and personal mode: not found either.
    stranger = await person("stranger")
    elsewhere = ok(await stranger.client.post("/organizations", json={"name": "Other"}), 201)
    assert await statuses(stranger.at(elsewhere["id"])) == [404, 404, 404]
    assert await statuses(organization.member.client) == [404, 404, 404]
    body = (await stranger.client.get(paths[0])).json()
    assert body["code"] == "campaign_not_found"
    anonymous = httpx.AsyncClient(base_url=str(member.base_url))
    async with anonymous:
        assert (await anonymous.get(paths[0])).status_code == 401


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ("node_type=sms", "query.node_type.0", "validation_error"),
        ("status=done", "query.status.0", "validation_error"),
        ("event=opened", "query.event.0", "validation_error"),
        ("execution_id=42", "query.execution_id", "validation_error"),
        ("search=ab", "search", "validation_error"),
        ("q=a%20b%20c", "q", "validation_error"),
        ("search=a_b%25", "search", "validation_error"),
        ("search=abc&q=xyz", "q", "validation_error"),
        ("limit=0", "query.limit", "validation_error"),
        ("limit=501", "query.limit", "validation_error"),
    ],
)
async def test_bad_parameters_are_422_naming_the_field(
    ann: Person, seeded: Seeded, query: str, field: str, code: str
) -> None:
    response = await ann.client.get(f"{seeded.logs}?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert [e["field"] for e in body["errors"]] == [field]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        cursors.encode(t="yesterday", i=1),
        cursors.encode(t="2030-01-01T00:00:00", i=1),  # no time zone
        cursors.encode(t="2030-01-01T00:00:00+00:00", i=-1),
    ],
)
async def test_a_bad_cursor_is_400(ann: Person, seeded: Seeded, cursor: str) -> None:
    response = await ann.client.get(seeded.logs, params={"cursor": cursor})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("query", ["format=xml", "", "format=csv&status=maybe"])
async def test_an_export_with_bad_parameters_is_422(
    ann: Person, seeded: Seeded, query: str
) -> None:
    response = await ann.client.get(f"{seeded.logs}/export?{query}")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"


async def test_unknown_campaigns_have_no_logs(ann: Person) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    for path in ("logs", "logs/export?format=jsonl", "activities"):
        response = await ann.client.get(f"/campaign-flows/{missing}/{path}")
        assert response.status_code == 404, response.text


async def test_a_reply_that_looks_like_a_formula_is_text_in_the_csv(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    """Replies are written by strangers: a CSV opened in a spreadsheet must not run them."""
    created = await campaign(ann.client, "Formulas")
    someone = await contact(ann.client, "mallory1", first_name="Mallory")
    [mallory] = await executions(db, created["id"], [someone["id"]])
    hostile = '=HYPERLINK("http://evil.example","click")'
    await seed(db, created["id"], [
        entry(mallory, "wait", "reply_received", hostile, BASE),
        entry(mallory, "wait", "reply_received", "-1+2", BASE + timedelta(minutes=1)),
        entry(mallory, "wait", "reply_received", "fine, thanks", BASE + timedelta(minutes=2)),
    ])  # fmt: skip
    path = f"/campaign-flows/{created['id']}"
    exported = await ann.client.get(f"{path}/logs/export", params={"format": "csv"})
    messages = [row["message"] for row in csv.DictReader(io.StringIO(exported.text))]
    assert messages == ["fine, thanks", "'-1+2", "'" + hostile]
    # The list and JSON Lines keep the text as it was written.
    listed = ok(await ann.client.get(f"{path}/logs"))["items"]
    assert [i["message"] for i in listed] == ["fine, thanks", "-1+2", hostile]
