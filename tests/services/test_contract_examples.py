"""Every contract example a service handles, fed through that service's handler against a real
database: the handler applies it and emits what the contract promises."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from services.api.app import create_service as api
from services.scheduler.app import create_service as scheduler
from services.sender.app import create_service as sender
from services.stats.app import create_service as stats
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.contracts import CONTRACTS, Contract, Payload
from shared.runtime import Service
from shared.settings import Settings
from tests.builders import FLOW, FakeRecord

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CREATOR = UUID("00000000-0000-0000-0000-00000000000c")
CONTACT = UUID("7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918")  # the contracts' example contact
CAMPAIGN = "0b9d3c3e-6f6e-4c1a-9a55-3f1f8a2b7c10"  # ... campaign
ACCOUNT = UUID("9a1e2b3c-4d5e-4f60-8a7b-1c2d3e4f5a6b")  # ... account
EXECUTION_ID = UUID("5f0c1a7e-0d7b-4f7e-8b1e-1f0d3c2b4a50")  # ... and execution
CONVERSATION = UUID("8e7d6c5b-4a39-4281-b7c6-d5e4f3a2b1c0")  # ... conversation
MESSAGE = UUID("1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8")  # ... and message


def handled() -> list[tuple[Contract[Payload], str]]:
    settings = Settings(kafka_bootstrap="unused:9092", database_url="postgresql://unused/x")
    pairs = []
    for service in (scheduler(settings), sender(settings), stats(settings), api(settings)):
        for contract in CONTRACTS:
            if contract.type.value in service.handlers.get(contract.topic, {}):
                pairs.append((contract, service.name))
    return pairs


async def seed_example_campaign(
    pool: asyncpg.Pool[Any],
    campaign_id: str,
    status: str = "draft",
    enabled: bool = True,
    deleted: bool = False,
    execution: str | None = "pending",
    lease_until: datetime | None = None,
    tags: list[str] | None = None,
    listed_phone: str | None = None,
    answer: bool = False,
    external_id: str | None = None,
    contact_tags: list[str] | None = None,
    contact_deleted: bool = False,
) -> None:
    """The example's campaign in a state where the example command applies: a simulated
    account, a valid flow and, unless `execution` is None, the example contact in it."""
    await pool.execute("INSERT INTO users (id, email) VALUES ($1, 'c@example.com')", CREATOR)
    account = await pool.fetchval(
        "INSERT INTO telegram_accounts (id, owner_user_id, display_name, session_kind,"
        " health_status, pacing) VALUES ($1, $2, 'a', 'simulated', 'active', $3) RETURNING id",
        ACCOUNT,
        CREATOR,
        {"min_gap_s": 0, "jitter_s": 0},
    )
    await pool.execute(
        "INSERT INTO campaigns (id, created_by, name, status, enabled, deleted_at,"
        " telegram_account_id, flow, tags) VALUES ($1, $2, 'Example', $3, $4,"
        " CASE WHEN $5 THEN now() END, $6, $7, $8)",
        UUID(campaign_id),
        CREATOR,
        status,
        enabled,
        deleted,
        account,
        FLOW,
        tags or [],
    )
    await pool.execute(
        "INSERT INTO contacts (id, owner_user_id, telegram_username, external_id, tags,"
        " deleted_at) VALUES ($1, $2, 'example', $3, $4, CASE WHEN $5 THEN now() END)",
        CONTACT,
        CREATOR,
        external_id,
        contact_tags or [],
        contact_deleted,
    )
    if listed_phone is not None:
        await pool.execute(
            "INSERT INTO do_not_contact (user_id, kind, value, reason, source, created_at)"
            " VALUES ($1, 'phone', $2, 'manual', 'api', now())",
            CREATOR,
            listed_phone,
        )
    if execution is not None:
        await pool.execute(
            "INSERT INTO executions (id, campaign_id, contact_id, status, next_execution_at,"
            " lease_until) VALUES ($1, $2, $3, $4, $5, $6)",
            EXECUTION_ID,
            UUID(campaign_id),
            CONTACT,
            execution,
            NOW,
            lease_until,
        )
    if answer:
        # The example conversation, and a person's answer in it, queued (as the API records it).
        await pool.execute(
            "INSERT INTO conversations (id, telegram_account_id, contact_id, campaign_id,"
            " execution_id, last_direction, last_body, last_message_at, unread_count,"
            " taken_over_at) VALUES ($1, $2, $3, $4, $5, 'incoming', 'Hello?', $6, 1, $6)",
            CONVERSATION,
            ACCOUNT,
            CONTACT,
            UUID(campaign_id),
            EXECUTION_ID if execution is not None else None,
            NOW,
        )
        await pool.execute(
            "INSERT INTO messages (id, campaign_id, contact_id, telegram_account_id, direction,"
            " body, status, send_key, random_id, created_at) VALUES ($1, $2, $3, $4,"
            " 'outgoing', 'Happy to help', 'queued', 'answer:example', 42, $5)",
            MESSAGE,
            UUID(campaign_id),
            CONTACT,
            ACCOUNT,
            NOW,
        )


def example_record(contract: Contract[Payload]) -> FakeRecord:
    body = {
        "message_id": "00000000-0000-0000-0000-0000000000aa",
        "type": contract.type.value,
        "version": contract.version,
        "occurred_at": NOW.isoformat(),
        "actor": {"user_id": str(CREATOR), "organization_id": None},
        "correlation_id": "00000000-0000-0000-0000-0000000000bb",
        "payload": contract.example,
    }
    return FakeRecord(json.dumps(body).encode(), 0, topic=contract.topic.value)


CAMPAIGN_EVENTS = "SELECT count(*) FROM outbox WHERE topic = 'dripline.campaign.events'"
COUNTED = ("SELECT (total_contacts, contacts_active, executions_pending)::text FROM campaign_stats",
           "(1,0,1)")  # fmt: skip
NOT_COUNTED = ("SELECT count(*) FROM campaign_stats", 0)
ACTIVITY = ("SELECT count(*) FROM campaign_activities", 1)
NO_ACTIVITY = ("SELECT count(*) FROM campaign_activities", 0)
PROGRESS = ("SELECT count(*) FROM stats_progress", 1)
EXECUTION = "SELECT status FROM executions"
CHANGED = "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'contact.changed'"

# What each handled example must leave behind: the state it is applied to (seed arguments), and
# queries with their expected values. Each command also emits exactly one outcome event.
EFFECTS: dict[tuple[str, str], tuple[dict[str, Any], list[tuple[str, Any]]]] = {
    ("scheduler", "campaign.launch"): ({"execution": "paused"}, [
        ("SELECT status FROM campaigns", "active"), (EXECUTION, "pending"),
        (CAMPAIGN_EVENTS, 1)]),
    ("api", "do_not_contact.add"): ({}, [
        ("SELECT (kind, value, reason, source)::text FROM do_not_contact",
         "(username,alice_smith,complaint,kafka)"),
        ("SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'do_not_contact.added'",
         1)]),
    # The example's phone is on the creator's list: it goes, with its event.
    ("api", "do_not_contact.remove"): ({"listed_phone": "4915123456789"}, [
        ("SELECT count(*) FROM do_not_contact", 0),
        ("SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'do_not_contact.removed'",
         1)]),
    # Other systems' contact commands (issue 16), each answered by contact.changed.
    ("api", "contact.upsert"): ({}, [
        ("SELECT (external_id, telegram_username, phone, first_name, tags)::text FROM contacts"
         " WHERE external_id IS NOT NULL",
         '(crm-000417,alice_smith,+4915123456789,Alice,"{crm,q4}")'),
        (CHANGED, 1)]),
    ("api", "contact.add_tags"): ({"external_id": "crm-000417", "contact_tags": ["a"]}, [
        ("SELECT tags::text FROM contacts", "{a,vip}"), (CHANGED, 1)]),
    ("api", "contact.remove_tags"): ({"contact_tags": ["q4", "a"]}, [
        ("SELECT tags::text FROM contacts", "{a}"), (CHANGED, 1)]),
    ("api", "contact.delete"): ({"external_id": "crm-000417"}, [
        ("SELECT deleted_at IS NOT NULL FROM contacts", True),
        (EXECUTION, "cancelled"), (CHANGED, 1)]),
    ("api", "contact.restore"): ({"contact_deleted": True}, [
        ("SELECT deleted_at IS NULL FROM contacts", True), (CHANGED, 1)]),
    # Another system asks for a bulk action (issue 16): recorded as over HTTP, and answered.
    ("api", "bulk_action.requested"): ({}, [
        ("SELECT (action, mode, status, batch_size)::text FROM bulk_actions",
         "(add_to_campaign,drip,queued,50)"),
        ("SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'bulk_action.changed'",
         1)]),
    # The topic's other type belongs to the other service: taken without effect.
    ("api", "bulk_operation.requested"): ({}, [("SELECT count(*) FROM outbox", 0)]),
    ("scheduler", "bulk_action.requested"): ({}, [
        ("SELECT count(*) FROM bulk_actions", 0), ("SELECT count(*) FROM outbox", 0)]),
    ("scheduler", "campaign.pause"): ({"status": "active"}, [
        ("SELECT status FROM campaigns", "paused"), (EXECUTION, "paused"), (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.stop"): ({"status": "active"}, [
        ("SELECT status FROM campaigns", "cancelled"), (EXECUTION, "cancelled"),
        ("SELECT error_message FROM executions", "Campaign stopped by user"),
        (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.enable"): ({"enabled": False}, [
        ("SELECT enabled FROM campaigns", True), (EXECUTION, "pending"), (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.disable"): ({"status": "active"}, [
        ("SELECT enabled FROM campaigns", False), ("SELECT status FROM campaigns", "active"),
        (EXECUTION, "cancelled"), (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.delete"): ({"status": "paused"}, [
        ("SELECT deleted_at IS NOT NULL AND deleted_by IS NOT NULL FROM campaigns", True),
        (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.restore"): ({"deleted": True}, [
        ("SELECT deleted_at IS NULL FROM campaigns", True), (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.duplicate"): ({}, [
        ("SELECT name FROM campaigns WHERE id = $1", "Example (Copy)"),
        ("SELECT count(*) FROM executions", 1), (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.add_contacts"): ({"execution": None}, [
        (EXECUTION, "pending"),
        ("SELECT context->'contact'->>'telegram_username' FROM executions", "example"),
        (CAMPAIGN_EVENTS, 1)]),
    ("scheduler", "campaign.remove_contacts"): ({}, [
        ("SELECT deleted_at IS NOT NULL FROM executions", True), (EXECUTION, "cancelled"),
        (CAMPAIGN_EVENTS, 1)]),
    # The example stops every active campaign tagged "spring" the actor can see: this one.
    ("scheduler", "bulk_operation.requested"): ({"status": "active", "tags": ["spring"]}, [
        ("SELECT status FROM campaigns", "cancelled"), (EXECUTION, "cancelled"),
        ("SELECT (status, origin, total, success_count, cancelled_executions)::text"
         " FROM bulk_operations", "(completed,kafka,1,1,1)"),
        ("SELECT status FROM bulk_operation_items", "succeeded"), (CAMPAIGN_EVENTS, 1),
        ("SELECT count(*) FROM outbox WHERE topic = 'dripline.bulk.events'", 3)]),
    # The example's claim: the first node (a send) goes out through the simulator and the
    # execution waits for a reply.
    ("sender", "execution.due"): (
        {"status": "active", "lease_until": datetime(2026, 11, 22, 10, 1, tzinfo=UTC)}, [
            ("SELECT status FROM messages", "sent"), (EXECUTION, "waiting"),
            ("SELECT current_node_id FROM executions", "wait"),
            ("SELECT count(*) FROM simulator_messages", 1)]),
    # A cooldown (the example) changes no campaign; a dead account would fail them.
    ("scheduler", "account.health_changed"): ({"status": "active"}, [
        ("SELECT status FROM campaigns", "active"), (EXECUTION, "pending")]),
    # A check's answer is for whoever asked: it changes no campaign.
    ("scheduler", "account.checked"): ({"status": "active"}, [
        ("SELECT status FROM campaigns", "active"), (EXECUTION, "pending")]),
    # The example's account is the actor's own: probed through the simulator now, recorded, and
    # answered.
    ("sender", "account.check_health"): ({}, [
        ("SELECT last_checked_at FROM telegram_accounts", NOW),
        ("SELECT convert_from(value, 'UTF8')::jsonb->'payload'->>'result' FROM outbox"
         " WHERE topic = 'dripline.account.events'", "checked")]),
    # A login step and an import are answered whatever happens; with no Telethon configured (as
    # here) the answer says so without connecting anywhere, and nothing is stored.
    **{("sender", kind): ({}, [
        ("SELECT convert_from(value, 'UTF8')::jsonb->'payload'->>'code' FROM outbox"
         " WHERE topic = 'dripline.account.events'", "telethon_not_configured"),
        ("SELECT count(*) FROM telegram_logins", 0),
        ("SELECT count(*) FROM telegram_accounts", 1)]) for kind in (
        "account.login", "account.import_session")},
    # A person's answer from the inbox: sent through the simulator from the account, recorded
    # sent, and the conversation's latest message; the execution does not move (taken over).
    ("sender", "conversation.send"): ({"answer": True}, [
        ("SELECT status FROM messages", "sent"), (EXECUTION, "pending"),
        ("SELECT body FROM simulator_messages", "Happy to help"),
        ("SELECT (last_direction, last_body)::text FROM conversations",
         "(outgoing,\"Happy to help\")"),
        ("SELECT last_send_at FROM telegram_accounts", NOW)]),
    # A read receipt goes to Telegram only (the simulated people do not see it): no record, no
    # event.
    ("sender", "conversation.read"): ({"answer": True}, [
        ("SELECT count(*) FROM outbox", 0), ("SELECT unread_count FROM conversations", 1)]),
    # A test send: the example step rendered for the example contact, sent to the account
    # itself through the simulator, logged in the campaign's log, answered; nothing else moves.
    ("sender", "account.test_send"): ({}, [
        ("SELECT (peer, body)::text FROM simulator_messages", "(me,\"Hi !\")"),
        ("SELECT (event, status)::text FROM execution_logs", "(test_sent,ok)"),
        ("SELECT convert_from(value, 'UTF8')::jsonb->'payload'->>'result' FROM outbox"
         " WHERE topic = 'dripline.account.events'", "sent"),
        (EXECUTION, "pending"), ("SELECT count(*) FROM messages", 0)]),
    # A test send's answer is for whoever asked; it changes no campaign and no figure.
    ("scheduler", "account.test_sent"): ({"status": "active"}, [
        ("SELECT status FROM campaigns", "active"), (EXECUTION, "pending")]),
    ("stats", "account.test_sent"): ({}, [NOT_COUNTED, NO_ACTIVITY, PROGRESS]),
    # A login's answer is for whoever asked; it changes no campaign.
    ("scheduler", "account.login_progressed"): ({"status": "active"}, [
        ("SELECT status FROM campaigns", "active"), (EXECUTION, "pending")]),
    # The stats service recounts every campaign an event names: the example campaign holds one
    # pending execution. Campaign-level events also enter the activity feed.
    **{("stats", kind): ({}, [COUNTED, ACTIVITY]) for kind in (
        "campaign.status_changed", "campaign.contacts_added", "campaign.contacts_removed",
        "campaign.duplicated")},
    **{("stats", kind): ({}, [COUNTED, NO_ACTIVITY]) for kind in (
        "execution.progressed", "message.sent", "message.failed", "message.delivered",
        "reply.received")},
    ("stats", "campaign.command_rejected"): ({}, [NOT_COUNTED, ACTIVITY]),
    # An account's health change is news in the feed of the active campaign sending from it.
    ("stats", "account.health_changed"): ({"status": "active"}, [NOT_COUNTED, ACTIVITY]),
    # A check's answer is not news: what it found, if anything, is its own health change.
    ("stats", "account.checked"): ({"status": "active"}, [NOT_COUNTED, NO_ACTIVITY, PROGRESS]),
    ("stats", "account.login_progressed"): ({}, [NOT_COUNTED, NO_ACTIVITY, PROGRESS]),
    # The fleet breaker's pause and resume are news in the feed of the context's unfinished
    # campaigns: the example names an organization this database does not hold.
    **{("stats", kind): ({}, [NOT_COUNTED, NO_ACTIVITY, PROGRESS]) for kind in (
        "organization.sending_paused", "organization.sending_resumed")},
    # Bulk operations change campaigns through campaign.status_changed; a bulk action's batch
    # names its campaigns through its items (the example's action is not in this database).
    **{("stats", kind): ({}, [NOT_COUNTED, NO_ACTIVITY, PROGRESS]) for kind in (
        "bulk_operation.progressed", "bulk_operation.completed", "bulk_action.progressed",
        "bulk_action.completed", "bulk_action.changed", "bulk_action.rejected")},
}  # fmt: skip


def test_every_handled_contract_has_an_expected_effect() -> None:
    assert {(name, c.type.value) for c, name in handled()} == set(EFFECTS)


@pytest.mark.parametrize(("contract", "service_name"), handled(),
                         ids=lambda v: v if isinstance(v, str) else v.type.value)  # fmt: skip
async def test_example_through_its_handler(
    pool: asyncpg.Pool[Any], contract: Contract[Payload], service_name: str
) -> None:
    seed, expectations = EFFECTS[(service_name, contract.type.value)]
    await seed_example_campaign(pool, CAMPAIGN, **seed)
    settings = Settings(kafka_bootstrap="unused:9092", database_url="postgresql://unused/x")
    makers = {"scheduler": scheduler, "sender": sender, "stats": stats, "api": api}
    service: Service = makers[service_name](settings)
    service._pool = pool  # as if started: the sender's work after commit uses the service's pool
    consumer = BatchConsumer(
        name=service.name, topic=contract.topic, handlers=service.handlers[contract.topic],
        pool=pool, clock=FixedClock(NOW),
    )  # fmt: skip
    await consumer.process([example_record(contract)])
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE topic LIKE '%.dlq'") == 0
    rejected = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'campaign.command_rejected'"
    )
    assert rejected == 0, "the example command was rejected"
    refused = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'contact.command_rejected'"
    )
    assert refused == 0, "the example contact command was rejected"
    bulk_refused = await pool.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'bulk_action.rejected'"
    )
    assert bulk_refused == 0, "the example bulk action request was rejected"
    for query, expected in expectations:
        arguments = [UUID(contract.example["copy_id"])] if "$1" in query else []
        assert await pool.fetchval(query, *arguments) == expected, query
