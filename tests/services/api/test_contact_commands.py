"""Other systems' contact commands on dripline.contact.commands (issue 16, item 4), through the
API's real handler and consumer against a real database: upsert, add and remove tags, delete
(the contact leaves its campaigns in the same transaction) and restore, each answered by
contact.changed; every refusal answered by contact.command_rejected with its code and nothing
changed; a command delivered twice applied once (the inbox); a command breaking the contract
dead-lettered with the reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from pydantic import BaseModel

from shared.messaging.contracts import ContactRef, ContactTags, ContactUpsert, MessageType
from shared.messaging.envelope import Actor, Envelope, new_envelope
from shared.messaging.topics import Topic
from tests.builders import FLOW
from tests.services.builders import ApiBus

NOW = datetime.now(UTC).replace(microsecond=0)


def command(
    kind: MessageType, payload: BaseModel, user: UUID, organization: UUID | None = None
) -> Envelope:
    return new_envelope(
        type=kind,
        payload=payload,
        occurred_at=NOW,
        actor=Actor(user_id=user, organization_id=organization),
        correlation_id=uuid4(),
    )


async def answers(pool: asyncpg.Pool[Any], sent: Envelope) -> list[tuple[str, dict[str, Any]]]:
    """The events answering one command (by its correlation id), in order."""
    rows = await pool.fetch(
        "SELECT headers->>'message-type' AS type, value FROM outbox WHERE topic = $1 ORDER BY id",
        Topic.CONTACT_EVENTS.value,
    )
    found = []
    for row in rows:
        event = json.loads(bytes(row["value"]))
        if event["correlation_id"] == str(sent.correlation_id):
            found.append((row["type"], event["payload"]))
    return found


async def user(pool: asyncpg.Pool[Any], email: str) -> UUID:
    found: UUID = await pool.fetchval("INSERT INTO users (email) VALUES ($1) RETURNING id", email)
    return found


async def test_another_system_upserts_tags_deletes_and_restores_a_contact(
    pool: asyncpg.Pool[Any],
) -> None:
    owner = await user(pool, "owner@example.com")
    org = await pool.fetchval("INSERT INTO organizations (name) VALUES ('Acme') RETURNING id")
    await pool.execute(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, 'owner')",
        org,
        owner,
    )
    bus = ApiBus(pool, Topic.CONTACT_COMMANDS)

    created = command(
        MessageType.CONTACT_UPSERT,
        ContactUpsert(external_id="crm-7", telegram_username="Dana_K", tags=["crm"]),
        owner,
        org,
    )
    await bus.send(created.to_bytes())
    [(kind, payload)] = await answers(pool, created)
    assert (kind, payload["change"], payload["tags"]) == ("contact.changed", "created", ["crm"])
    contact = UUID(payload["contact_id"])

    # Found again by username (case-insensitively) when no external id is given.
    by_name = command(
        MessageType.CONTACT_UPSERT,
        ContactUpsert(telegram_username="dana_k", first_name="Dana"),
        owner,
        org,
    )
    tagged = command(
        MessageType.CONTACT_ADD_TAGS,
        ContactTags(external_id="crm-7", tags=["vip", "crm"]),
        owner,
        org,
    )
    untagged = command(
        MessageType.CONTACT_REMOVE_TAGS, ContactTags(contact_id=contact, tags=["crm"]), owner, org
    )
    await bus.send(by_name.to_bytes(), tagged.to_bytes(), untagged.to_bytes())
    [(_, named)] = await answers(pool, by_name)
    assert (named["change"], named["contact_id"]) == ("updated", str(contact))
    [(_, added)] = await answers(pool, tagged)
    assert (added["change"], added["tags"]) == ("tags_added", ["crm", "vip"])
    [(_, removed)] = await answers(pool, untagged)
    assert (removed["change"], removed["tags"]) == ("tags_removed", ["vip"])
    row = await pool.fetchrow("SELECT first_name, tags FROM contacts WHERE id = $1", contact)
    assert row is not None
    assert (row["first_name"], list(row["tags"])) == ("Dana", ["vip"])

    # The contact waits in a running campaign; a delete takes it out in the same transaction.
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (owner_user_id, organization_id, display_name,"
        " session_kind, health_status) VALUES ($1, $2, 'a', 'simulated', 'active') RETURNING id",
        owner,
        org,
    )
    campaign = await pool.fetchval(
        "INSERT INTO campaigns (created_by, organization_id, name, status, telegram_account_id,"
        " flow) VALUES ($1, $2, 'c', 'active', $3, $4) RETURNING id",
        owner,
        org,
        account,
        FLOW,
    )
    await pool.execute(
        "INSERT INTO executions (campaign_id, contact_id, telegram_account_id, next_execution_at)"
        " VALUES ($1, $2, $3, $4)",
        campaign,
        contact,
        account,
        NOW,
    )
    deleted = command(MessageType.CONTACT_DELETE, ContactRef(external_id="crm-7"), owner, org)
    await bus.send(deleted.to_bytes())
    [(_, gone)] = await answers(pool, deleted)
    assert (gone["change"], gone["deleted"]) == ("deleted", True)
    execution = await pool.fetchrow(
        "SELECT status, error_message, deleted_at IS NOT NULL AS removed FROM executions"
    )
    assert execution is not None
    assert dict(execution) == {
        "status": "cancelled",
        "error_message": "contact_deleted",
        "removed": True,
    }
    progressed = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'execution.progressed'"
    )
    assert progressed == 1

    # Tags of a deleted contact, and an upsert by its external id, are refused until restored.
    late_tags = command(
        MessageType.CONTACT_ADD_TAGS, ContactTags(contact_id=contact, tags=["x"]), owner, org
    )
    late_upsert = command(
        MessageType.CONTACT_UPSERT, ContactUpsert(external_id="crm-7", first_name="D"), owner, org
    )
    restored = command(MessageType.CONTACT_RESTORE, ContactRef(contact_id=contact), owner, org)
    await bus.send(late_tags.to_bytes(), late_upsert.to_bytes(), restored.to_bytes())
    for refused in (late_tags, late_upsert):
        [(kind, payload)] = await answers(pool, refused)
        assert (kind, payload["code"]) == ("contact.command_rejected", "contact_deleted")
    [(_, back)] = await answers(pool, restored)
    assert (back["change"], back["deleted"]) == ("restored", False)
    row = await pool.fetchrow(
        "SELECT first_name, tags, deleted_at FROM contacts WHERE id = $1", contact
    )
    assert row is not None
    assert (row["first_name"], list(row["tags"]), row["deleted_at"]) == ("Dana", ["vip"], None)


async def test_refused_contact_commands_name_their_reason_and_change_nothing(
    pool: asyncpg.Pool[Any],
) -> None:
    owner = await user(pool, "o@example.com")
    member = await user(pool, "m@example.com")
    stranger = await user(pool, "s@example.com")
    org = await pool.fetchval("INSERT INTO organizations (name) VALUES ('Acme') RETURNING id")
    await pool.executemany(
        "INSERT INTO memberships (organization_id, user_id, role) VALUES ($1, $2, $3)",
        [(org, owner, "owner"), (org, member, "member")],
    )
    bus = ApiBus(pool, Topic.CONTACT_COMMANDS)
    theirs = command(
        MessageType.CONTACT_UPSERT,
        ContactUpsert(external_id="crm-1", telegram_username="owned_by_owner", phone="+4915111"),
        owner,
        org,
    )
    await bus.send(theirs.to_bytes())
    before = await pool.fetch("SELECT * FROM contacts ORDER BY id")
    assert len(before) == 1

    refusals = {
        # Not a member of the organization the command names.
        "organization_not_found": command(
            MessageType.CONTACT_UPSERT,
            ContactUpsert(telegram_username="intruder"),
            stranger,
            org,
        ),
        # A member deletes only the contacts it created.
        "contacts_not_own": command(
            MessageType.CONTACT_DELETE, ContactRef(external_id="crm-1"), member, org
        ),
        # Another context (the owner's personal mode) does not see the organization's contact.
        "contact_not_found": command(
            MessageType.CONTACT_ADD_TAGS, ContactTags(external_id="crm-1", tags=["a"]), owner
        ),
        # Found by its phone, the contact already has another external id.
        "external_id_conflict": command(
            MessageType.CONTACT_UPSERT,
            ContactUpsert(external_id="crm-2", phone="+4915111"),
            owner,
            org,
        ),
        # Nothing found and nothing to create a contact by.
        "contact_identifier_missing": command(
            MessageType.CONTACT_UPSERT,
            ContactUpsert(external_id="crm-3", first_name="Nobody"),
            owner,
            org,
        ),
    }
    await bus.send(*(sent.to_bytes() for sent in refusals.values()))

    for code, sent in refusals.items():
        [(kind, payload)] = await answers(pool, sent)
        assert (kind, payload["code"], payload["command_type"]) == (
            "contact.command_rejected",
            code,
            sent.type,
        ), payload
    assert [dict(r) for r in await pool.fetch("SELECT * FROM contacts ORDER BY id")] == [
        dict(r) for r in before
    ]


async def test_a_contact_command_delivered_twice_is_applied_once(pool: asyncpg.Pool[Any]) -> None:
    owner = await user(pool, "twice@example.com")
    bus = ApiBus(pool, Topic.CONTACT_COMMANDS)
    created = command(
        MessageType.CONTACT_UPSERT, ContactUpsert(telegram_username="once_only"), owner
    )
    tagged = command(
        MessageType.CONTACT_ADD_TAGS, ContactTags(external_id="x-1", tags=["t"]), owner
    )
    await bus.send(created.to_bytes(), created.to_bytes())
    await bus.send(created.to_bytes(), tagged.to_bytes(), tagged.to_bytes())

    assert await pool.fetchval("SELECT count(*) FROM contacts") == 1
    assert len(await answers(pool, created)) == 1
    [(kind, payload)] = await answers(pool, tagged)
    assert (kind, payload["code"]) == ("contact.command_rejected", "contact_not_found")


async def test_a_contact_command_breaking_the_contract_is_dead_lettered(
    pool: asyncpg.Pool[Any],
) -> None:
    owner = await user(pool, "dlq@example.com")
    sent = command(MessageType.CONTACT_DELETE, ContactRef(external_id="crm-1"), owner)
    raw = json.loads(sent.to_bytes())
    raw["payload"] = {"external_id": "crm-1", "contact_id": str(uuid4())}  # both: not one
    await ApiBus(pool, Topic.CONTACT_COMMANDS).send(json.dumps(raw).encode())

    letters = await pool.fetch("SELECT topic, headers FROM outbox WHERE topic LIKE '%.dlq'")
    assert [r["topic"] for r in letters] == [Topic.CONTACT_COMMANDS.dlq]
    assert "give exactly one of contact_id and external_id" in letters[0]["headers"]["dlq-reason"]
    assert await answers(pool, sent) == []
