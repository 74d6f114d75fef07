"""bulk_action.requested from another system (issue 16, item 4), through the API's real
handler and consumer against a real database: recorded as over HTTP and answered with
bulk_action.changed; a repeated action id recorded once and answered again; the same record
delivered twice applied once (the inbox); a stranger's or an invalid request answered with
bulk_action.rejected and nothing recorded."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from shared.messaging.contracts import BulkActionRequest, MessageType
from shared.messaging.envelope import Actor, Envelope, new_envelope
from shared.messaging.topics import Topic
from tests.builders import FLOW
from tests.services.builders import ApiBus

NOW = datetime.now(UTC).replace(microsecond=0)


def asked(request: BulkActionRequest, user: UUID, organization: UUID | None = None) -> Envelope:
    return new_envelope(
        type=MessageType.BULK_ACTION_REQUESTED,
        payload=request,
        occurred_at=NOW,
        actor=Actor(user_id=user, organization_id=organization),
        correlation_id=uuid4(),
    )


async def answers(pool: asyncpg.Pool[Any], sent: Envelope) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch(
        "SELECT headers->>'message-type' AS type, value FROM outbox WHERE topic = $1 ORDER BY id",
        Topic.BULK_EVENTS.value,
    )
    found = []
    for row in rows:
        event = json.loads(bytes(row["value"]))
        if event["correlation_id"] == str(sent.correlation_id):
            found.append((row["type"], event["payload"]))
    return found


async def world(pool: asyncpg.Pool[Any]) -> tuple[UUID, UUID, list[UUID]]:
    """A user with a draft campaign (a simulated account, a valid flow) and two contacts."""
    owner: UUID = await pool.fetchval(
        "INSERT INTO users (email) VALUES ('crm@example.com') RETURNING id"
    )
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind,"
        " health_status) VALUES ($1, 'a', 'simulated', 'active') RETURNING id",
        owner,
    )
    campaign: UUID = await pool.fetchval(
        "INSERT INTO campaigns (created_by, name, telegram_account_id, flow)"
        " VALUES ($1, 'c', $2, $3) RETURNING id",
        owner,
        account,
        FLOW,
    )
    contacts = [
        await pool.fetchval(
            "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, $2) RETURNING id",
            owner,
            name,
        )
        for name in ("crm_one", "crm_two")
    ]
    return owner, campaign, contacts


def request(action_id: UUID, campaign: UUID, contacts: list[UUID], **fields: Any) -> Any:
    return BulkActionRequest(
        action_id=action_id,
        name="CRM enrolment",
        action="add_to_campaign",
        contact_ids=contacts,
        params={"campaign_id": str(campaign)},
        **fields,
    )


async def test_a_request_is_recorded_once_however_often_it_comes(pool: asyncpg.Pool[Any]) -> None:
    owner, campaign, contacts = await world(pool)
    bus = ApiBus(pool, Topic.BULK_COMMANDS)
    action_id = uuid4()
    first = asked(request(action_id, campaign, contacts), owner)
    # The same record redelivered, then the other system sending the request again (a new
    # message with the same action id, e.g. after it lost the answer).
    await bus.send(first, first)
    retried = asked(request(action_id, campaign, contacts), owner)
    await bus.send(retried)

    rows = await pool.fetch("SELECT id, action, status, selection FROM bulk_actions")
    assert [(r["id"], r["action"], r["status"]) for r in rows] == [
        (action_id, "add_to_campaign", "queued")
    ]
    [(kind, payload)] = await answers(pool, first)
    assert (kind, payload["action_id"]) == ("bulk_action.changed", str(action_id))
    [(kind, again)] = await answers(pool, retried)
    assert (kind, again["action_id"]) == ("bulk_action.changed", str(action_id))


async def test_a_request_that_does_not_hold_is_answered_and_records_nothing(
    pool: asyncpg.Pool[Any],
) -> None:
    owner, campaign, contacts = await world(pool)
    stranger = await pool.fetchval(
        "INSERT INTO users (email) VALUES ('s@example.com') RETURNING id"
    )
    org = await pool.fetchval("INSERT INTO organizations (name) VALUES ('Acme') RETURNING id")
    bus = ApiBus(pool, Topic.BULK_COMMANDS)
    outsider = asked(request(uuid4(), campaign, contacts), stranger, org)
    bad_drip = asked(
        request(uuid4(), campaign, contacts, mode="drip", drip={"batch_size": 0}), owner
    )
    elsewhere = asked(request(uuid4(), uuid4(), contacts), owner)
    await bus.send(outsider, bad_drip, elsewhere)

    [(kind, refused)] = await answers(pool, outsider)
    assert (kind, refused["code"]) == ("bulk_action.rejected", "not_a_member")
    [(kind, invalid)] = await answers(pool, bad_drip)
    assert (kind, invalid["code"]) == ("bulk_action.rejected", "validation_error")
    assert any(e.startswith("drip") for e in invalid["errors"]), invalid
    [(kind, unknown)] = await answers(pool, elsewhere)
    assert kind == "bulk_action.rejected"
    assert unknown["code"] == "campaign_not_found", unknown
    assert await pool.fetchval("SELECT count(*) FROM bulk_actions") == 0
    assert await pool.fetchval("SELECT count(*) FROM bulk_action_items") == 0
