"""Another system drives Dripline through Kafka only (issue 16): it upserts contacts on
dripline.contact.commands, enrols them in a campaign with a drip bulk action on
dripline.bulk.commands, and follows the action on dripline.bulk.events, through the real
services."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from shared.messaging.contracts import BulkActionRequest, ContactUpsert, Payload
from shared.messaging.envelope import Actor, Envelope, new_envelope
from shared.messaging.topics import Topic
from tests.builders import account, campaign, ok
from tests.e2e.conftest import Stack
from tests.support import eventually, find_on_topic, produce, topic

FLOW = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "hello", "to": "end"}],
}


def command(kind: str, payload: Payload, user_id: UUID) -> Envelope:
    return new_envelope(
        type=kind,
        payload=payload,
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id=user_id),
        correlation_id=uuid4(),
    )


async def answers(stack: Stack, logical: str, correlation_id: UUID) -> list[dict[str, Any]]:
    """The events on a topic that answer one command (its correlation id)."""
    wanted = str(correlation_id).encode()
    records = await find_on_topic(
        stack.settings.bootstrap_servers,
        topic(stack.settings, logical),
        lambda r: wanted in r.value,
        timeout_s=60,
    )
    events = [json.loads(r.value) for r in records]
    return [e for e in events if e["correlation_id"] == str(correlation_id)]


async def test_another_system_upserts_contacts_and_enrols_them_with_a_drip_bulk_action(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    bootstrap = stack.settings.bootstrap_servers
    contact_commands = topic(stack.settings, Topic.CONTACT_COMMANDS)
    # The campaign a person prepared (over HTTP); from here on, only Kafka.
    sender = await account(stack.api)
    target = await campaign(stack.api, "From the CRM", telegram_account_id=sender["id"], flow=FLOW)

    people = {"crm-1": "kc_ann1", "crm-2": "kc_bob2", "crm-3": "kc_cid3"}
    upserts = {}
    for external, username in people.items():
        upsert = ContactUpsert(
            external_id=external, telegram_username=username, first_name=username[3:], tags=["crm"]
        )
        sent = command("contact.upsert", upsert, stack.user_id)
        await produce(bootstrap, contact_commands, sent.to_bytes(), str(stack.user_id).encode())
        upserts[external] = sent
    contact_ids: dict[str, str] = {}
    for external, sent in upserts.items():
        [changed] = await answers(stack, Topic.CONTACT_EVENTS, sent.correlation_id)
        assert changed["type"] == "contact.changed"
        assert (changed["payload"]["change"], changed["payload"]["external_id"]) == (
            "created",
            external,
        )
        contact_ids[external] = changed["payload"]["contact_id"]

    # The same external id again updates the same contact: no second one.
    again = command(
        "contact.upsert",
        ContactUpsert(external_id="crm-1", first_name="Annie", tags=["crm", "vip"]),
        stack.user_id,
    )
    await produce(bootstrap, contact_commands, again.to_bytes(), str(stack.user_id).encode())
    [updated] = await answers(stack, Topic.CONTACT_EVENTS, again.correlation_id)
    assert updated["payload"]["change"] == "updated"
    assert updated["payload"]["contact_id"] == contact_ids["crm-1"]
    assert updated["payload"]["tags"] == ["crm", "vip"]
    count = await pool.fetchval("SELECT count(*) FROM contacts WHERE external_id LIKE 'crm-%'")
    assert count == 3

    # Enrol them with a drip bulk action, then follow it on the bulk events.
    action_id = uuid4()
    request = BulkActionRequest(
        action_id=action_id,
        name="CRM enrolment",
        action="add_to_campaign",
        contact_ids=[UUID(c) for c in contact_ids.values()],
        params={"campaign_id": target["id"]},
        mode="drip",
        drip={"batch_size": 3, "every": 1, "unit": "hours"},
    )
    asked = command("bulk_action.requested", request, stack.user_id)
    bulk_commands = topic(stack.settings, Topic.BULK_COMMANDS)
    await produce(bootstrap, bulk_commands, asked.to_bytes(), str(action_id).encode())
    [recorded] = await answers(stack, Topic.BULK_EVENTS, asked.correlation_id)
    assert recorded["type"] == "bulk_action.changed"
    assert (recorded["payload"]["action_id"], recorded["payload"]["action"]) == (
        str(action_id),
        "add_to_campaign",
    )

    wanted = str(action_id).encode()

    async def progress() -> list[dict[str, Any]]:
        records = await find_on_topic(
            bootstrap, topic(stack.settings, Topic.BULK_EVENTS), lambda r: wanted in r.value
        )
        found = [json.loads(r.value) for r in records]
        ours = [e for e in found if e["payload"].get("action_id") == str(action_id)]
        return ours if any(e["type"] == "bulk_action.progressed" for e in ours) else []

    events = await eventually(progress, timeout_s=90)
    batch = next(e for e in events if e["type"] == "bulk_action.progressed")["payload"]
    assert (batch["batch"], batch["batch_size"], batch["total"]) == (1, 3, 3)
    assert (batch["processed"], batch["success_count"]) == (3, 3)
    enrolled = await pool.fetch(
        "SELECT contact_id::text FROM executions WHERE campaign_id = $1 AND deleted_at IS NULL",
        target["id"],
    )
    assert sorted(r["contact_id"] for r in enrolled) == sorted(contact_ids.values())

    # A request that does not hold is answered, not dead-lettered.
    bad = BulkActionRequest(
        action_id=uuid4(),
        name="Nowhere",
        action="add_to_campaign",
        contact_ids=[UUID(contact_ids["crm-1"])],
        params={"campaign_id": str(uuid4())},
    )
    refused = command("bulk_action.requested", bad, stack.user_id)
    await produce(bootstrap, bulk_commands, refused.to_bytes(), str(bad.action_id).encode())
    [rejection] = await answers(stack, Topic.BULK_EVENTS, refused.correlation_id)
    assert rejection["type"] == "bulk_action.rejected"
    ok_detail = ok(await stack.api.get(f"/bulk-actions/{action_id}"))
    assert ok_detail["id"] == str(action_id)
