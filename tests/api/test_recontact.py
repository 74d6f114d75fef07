"""Enrolment and recontact_after_days (issue 15, item 4), through the live services: a person
campaign A messaged (the sender, through the simulator) is not enrolled by campaign B, by hand
or by a bulk action, while the organization's setting is set; and adding contacts says how many
of those added are already in another active campaign."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from tests.api.conftest import Organization, Person, PersonFactory
from tests.builders import add_contacts, campaign, command, contact, launchable, ok
from tests.support import eventually

COUNTS = (
    "requested",
    "added",
    "skipped_duplicates",
    "skipped_do_not_contact",
    "skipped_recently_contacted",
    "in_other_active_campaigns",
    "not_found",
)


def counts(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: answer[k] for k in COUNTS}


async def launched_and_messaged(client: httpx.AsyncClient, db: asyncpg.Pool[Any], name: str,
                                contacts: int, ago: timedelta = timedelta(days=5),
                                ) -> tuple[dict[str, Any], list[str]]:  # fmt: skip
    """A launched campaign whose first message reached each of its contacts `ago`, its
    executions waiting for a reply (unfinished). These live services have no sender: the send
    is recorded as the sender records one (an outgoing message with sent_at, delivered)."""
    ready = await launchable(client, name, contacts=contacts)
    ok(await command(client, ready["id"], "launch"))
    rows = await db.fetch(
        "UPDATE executions SET status = 'waiting', current_node_id = 'wait'"
        " WHERE campaign_id = $1 RETURNING id, contact_id",
        UUID(ready["id"]),
    )
    for row in rows:
        await db.execute(
            "INSERT INTO messages (campaign_id, execution_id, contact_id, node_id, direction,"
            " body, status, sent_at) VALUES ($1, $2, $3, 'hello', 'outgoing', 'Hi!',"
            " 'delivered', $4)",
            UUID(ready["id"]),
            row["id"],
            row["contact_id"],
            datetime.now(UTC) - ago,
        )
    return ready, sorted(str(r["contact_id"]) for r in rows)


async def contacts_added_events(db: asyncpg.Pool[Any], campaign_id: str) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT value FROM outbox WHERE topic = 'dripline.campaign.events'"
        " AND headers->>'message-type' = 'campaign.contacts_added' ORDER BY id"
    )
    payloads = [json.loads(bytes(r["value"]))["payload"] for r in rows]
    return [p for p in payloads if p["campaign_id"] == campaign_id]


async def test_a_contact_campaign_a_messaged_is_not_enrolled_by_campaign_b(
    organization: Organization, db: asyncpg.Pool[Any]
) -> None:
    org = organization.id
    owner = organization.owner.at(org)
    ok(await owner.patch(f"/organizations/{org}", json={"recontact_after_days": 30}))
    _, (messaged,) = await launched_and_messaged(owner, db, "Recon A", contacts=1)
    _, (long_ago,) = await launched_and_messaged(
        owner, db, "Recon Old", contacts=1, ago=timedelta(days=31)
    )
    fresh = await contact(owner, "recon_fresh")
    b = await campaign(owner, "Recon B")

    answer = await add_contacts(owner, b["id"], [messaged, long_ago, fresh["id"]])
    assert counts(answer) == {
        "requested": 3,
        "added": 2,
        "skipped_duplicates": 0,
        "skipped_do_not_contact": 0,
        "skipped_recently_contacted": 1,
        "in_other_active_campaigns": 1,  # long_ago: Recon Old still waits for their reply
        "not_found": 0,
    }
    enrolled = await db.fetch("SELECT contact_id FROM executions WHERE campaign_id = $1", b["id"])
    assert {str(r["contact_id"]) for r in enrolled} == {long_ago, fresh["id"]}
    (event,) = await contacts_added_events(db, b["id"])
    assert (event["skipped_recently_contacted"], event["in_other_active_campaigns"]) == (1, 1)

    # The bulk add-to-campaign applies the same rule, item by item.
    c = await campaign(owner, "Recon C")
    action = ok(
        await owner.post(
            "/bulk-actions",
            json={
                "name": "Recon bulk",
                "action": "add_to_campaign",
                "contact_ids": [messaged, fresh["id"]],
                "params": {"campaign_id": c["id"]},
            },
        ),
        201,
    )

    async def items() -> dict[str, tuple[str, str]] | None:
        found = ok(await owner.get(f"/bulk-actions/{action['id']}"))
        if found["status"] not in ("completed", "failed", "cancelled"):
            return None
        page = ok(await owner.get(f"/bulk-actions/{action['id']}/items"))
        return {i["contact_id"]: (i["status"], i["code"]) for i in page["items"]}

    outcomes = await eventually(items)
    assert outcomes == {
        messaged: ("skipped", "recently_contacted"),
        fresh["id"]: ("succeeded", "added"),
    }

    # Turned off, the same person is enrolled again, and is counted as in another active
    # campaign (A's execution waits for their reply).
    ok(await owner.patch(f"/organizations/{org}", json={"recontact_after_days": None}))
    again = await add_contacts(owner, b["id"], [messaged])
    assert counts(again) == {
        "requested": 1,
        "added": 1,
        "skipped_duplicates": 0,
        "skipped_do_not_contact": 0,
        "skipped_recently_contacted": 0,
        "in_other_active_campaigns": 1,
        "not_found": 0,
    }


async def test_adding_contacts_counts_those_in_another_active_campaign(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    """Informational: they are added all the same. Personal mode: the owner's campaigns."""
    eve: Person = await person("eve")
    client = eve.client
    _, in_a = await launched_and_messaged(client, db, "Busy A", contacts=2)
    # In a campaign that is not active (a draft): not counted.
    drafted = await contact(client, "in_a_draft")
    await add_contacts(client, (await campaign(client, "Draft D"))["id"], [drafted["id"]])
    b = await campaign(client, "Busy B")

    answer = await add_contacts(client, b["id"], [*in_a, drafted["id"]])
    assert counts(answer) == {
        "requested": 3,
        "added": 3,
        "skipped_duplicates": 0,
        "skipped_do_not_contact": 0,
        "skipped_recently_contacted": 0,
        "in_other_active_campaigns": 2,
        "not_found": 0,
    }
    (event,) = await contacts_added_events(db, b["id"])
    assert event["in_other_active_campaigns"] == 2
    # Those already in B are duplicates now, not "in another campaign" again.
    twice = await add_contacts(client, b["id"], in_a)
    assert (twice["added"], twice["skipped_duplicates"], twice["in_other_active_campaigns"]) == (
        0,
        2,
        0,
    )
