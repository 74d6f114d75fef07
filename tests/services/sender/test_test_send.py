"""account.test_send through the sender's real handler and consumer, with the simulator: the
step is rendered as the contact's execution renders it, goes to the account's own Saved
Messages, is logged in the campaign's log, and changes nothing else; each refusal is answered
with its code."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from services.sender.previews import send_test
from services.sender.simulator import SimulatedTelegram
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.contracts import AccountTestSend, AccountTestSent, MessageType
from shared.messaging.envelope import Actor, Envelope, new_envelope
from shared.messaging.topics import Topic
from tests.builders import FakeRecord
from tests.services.builders import FREE_PACE, create_service_for, step_due

NOW = datetime.now(UTC).replace(microsecond=0)
PHOTO = b"\xff\xd8\xff" + b"photo"
FLOW: dict[str, Any] = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message",
         "text": "{Hi|Hello|Hey} {first_name|there}, {fields.city|your town} awaits"},
        {"id": "pause", "type": "delay", "seconds": 3600},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "hello", "to": "pause"}, {"from": "pause", "to": "end"}],
}  # fmt: skip


class World:
    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self.pool = pool

    async def build(self, *, health: str = "active", attachment: bool = True) -> None:
        pool = self.pool
        self.user = await pool.fetchval(
            "INSERT INTO users (email) VALUES ($1) RETURNING id", f"{uuid4().hex}@example.com"
        )
        self.actor = Actor(user_id=self.user)
        self.account = await pool.fetchval(
            "INSERT INTO telegram_accounts (owner_user_id, display_name, session_kind,"
            " health_status, pacing, simulation) VALUES ($1, 'a', 'simulated', $2, $3,"
            ' \'{"default": {"read_after_s": 1, "reply_after_s": 1}}\') RETURNING id',
            self.user,
            health,
            FREE_PACE,
        )
        self.attachment = uuid4()
        await pool.execute(
            "INSERT INTO attachments (id, owner_user_id, kind, content_type, filename,"
            " size_bytes, sha256, data) VALUES ($1, $2, 'photo', 'image/jpeg', 'offer.jpg',"
            " $3, $4, $5)",
            self.attachment,
            self.user,
            len(PHOTO),
            hashlib.sha256(PHOTO).hexdigest(),
            PHOTO,
        )
        flow = FLOW
        if attachment:
            hello = {**FLOW["nodes"][0], "attachment_id": str(self.attachment)}
            flow = {**FLOW, "nodes": [hello, *FLOW["nodes"][1:]]}
        self.campaign = await pool.fetchval(
            "INSERT INTO campaigns (created_by, name, status, telegram_account_id, flow)"
            " VALUES ($1, 'c', 'active', $2, $3) RETURNING id",
            self.user,
            self.account,
            flow,
        )
        self.contacts: dict[str, UUID] = {}
        for name, first_name, fields in (("ada", "Ada", {"city": "Paris"}),
                                         ("anon", None, {})):  # fmt: skip
            self.contacts[name] = await pool.fetchval(
                "INSERT INTO contacts (owner_user_id, telegram_username, first_name,"
                " custom_fields) VALUES ($1, $2, $3, $4) RETURNING id",
                self.user,
                name,
                first_name,
                fields,
            )

    def command(self, node_id: str = "hello", contact: str = "ada") -> AccountTestSend:
        return AccountTestSend(
            telegram_account_id=self.account,
            campaign_id=self.campaign,
            node_id=node_id,
            contact_id=self.contacts.get(contact) or uuid4(),
        )

    async def ask(
        self, command: AccountTestSend, *, actor: Actor | None = None, now: datetime = NOW
    ) -> AccountTestSent:
        """The command through the sender's consumer; its answer, from the outbox."""
        envelope = new_envelope(
            type=MessageType.ACCOUNT_TEST_SEND,
            payload=command,
            occurred_at=now,
            actor=actor or self.actor,
        )
        service = create_service_for(self.pool)
        consumer = BatchConsumer(
            name="sender",
            topic=Topic.ACCOUNT_COMMANDS,
            handlers=service.handlers[Topic.ACCOUNT_COMMANDS],
            pool=self.pool,
            clock=FixedClock(now),
        )
        record = FakeRecord(envelope.to_bytes(), 0, topic=Topic.ACCOUNT_COMMANDS.value)
        await consumer.process([record])
        raw = await self.pool.fetchval(
            "SELECT convert_from(value, 'UTF8') FROM outbox WHERE topic = $1"
            " AND headers->>'message-type' = 'account.test_sent'"
            " AND convert_from(value, 'UTF8')::jsonb->>'correlation_id' = $2",
            Topic.ACCOUNT_EVENTS.value,
            str(envelope.correlation_id),
        )
        assert raw is not None, "the command was not answered"
        return AccountTestSent.model_validate(Envelope.model_validate_json(raw).payload)


@pytest.fixture
async def world(pool: asyncpg.Pool[Any]) -> World:
    built = World(pool)
    await built.build()
    return built


async def test_the_step_goes_to_saved_messages_as_the_contacts_execution_sends_it(
    world: World,
) -> None:
    answer = await world.ask(world.command())
    assert (answer.result, answer.code, answer.attachment_id) == ("sent", None, world.attachment)
    assert answer.text is not None
    assert answer.text.endswith(" Ada, Paris awaits")
    test = await world.pool.fetchrow(
        "SELECT peer, body, attachment_id, read_at, reply_at FROM simulator_messages"
    )
    assert test is not None
    assert dict(test) == {"peer": "me", "body": answer.text, "attachment_id": world.attachment,
                          "read_at": None, "reply_at": None}  # fmt: skip
    assert answer.telegram_message_id is not None
    # Nothing of the campaign moved: no execution, no message record; its log has the test.
    assert await world.pool.fetchval("SELECT count(*) FROM executions") == 0
    assert await world.pool.fetchval("SELECT count(*) FROM messages") == 0
    logged = await world.pool.fetchrow(
        "SELECT campaign_id, execution_id, contact_id, node_id, event, status, message,"
        " details->>'telegram_message_id' AS sent_id FROM execution_logs"
    )
    assert logged is not None
    assert dict(logged) == {
        "campaign_id": world.campaign, "execution_id": None, "contact_id": world.contacts["ada"],
        "node_id": "hello", "event": "test_sent", "status": "ok", "message": answer.text,
        "sent_id": str(answer.telegram_message_id),
    }  # fmt: skip
    # The contact's own execution, when it runs, sends the very same text (the same spintax).
    execution = await world.pool.fetchval(
        "INSERT INTO executions (campaign_id, contact_id, status, next_execution_at,"
        " lease_until) VALUES ($1, $2, 'pending', $3, $4) RETURNING id",
        world.campaign,
        world.contacts["ada"],
        NOW,
        NOW + timedelta(minutes=1),
    )
    await step_due(
        world.pool, execution, world.campaign, world.account, now=NOW,
        lease=NOW + timedelta(minutes=1),
    )  # fmt: skip
    real = await world.pool.fetchval("SELECT body FROM simulator_messages WHERE peer = 'ada'")
    assert real == answer.text


async def test_fallbacks_fill_what_the_contact_lacks(world: World) -> None:
    answer = await world.ask(world.command(contact="anon"))
    assert answer.result == "sent"
    assert answer.text is not None
    assert answer.text.endswith(" there, your town awaits")


async def test_a_redelivered_command_is_not_sent_twice(world: World) -> None:
    """A crash after the send and before the commit brings the command back: the same
    random_id, which the gateway recognises."""
    gateway = SimulatedTelegram(lambda: world.pool)
    command_id = uuid4()
    answers = []
    for _ in range(2):
        async with world.pool.acquire() as connection, connection.transaction():
            answers.append(
                await send_test(connection, gateway, world.command(), world.actor, command_id, NOW)
            )
    assert [a.result for a in answers] == ["sent", "sent"]
    assert answers[0].telegram_message_id == answers[1].telegram_message_id
    assert await world.pool.fetchval("SELECT count(*) FROM simulator_messages") == 1


@pytest.mark.parametrize(
    ("node_id", "contact", "code"),
    [
        ("pause", "ada", "not_a_send_step"),
        ("nowhere", "ada", "node_not_found"),
        ("hello", "stranger", "contact_not_found"),
    ],
)
async def test_a_step_or_contact_that_cannot_be_tested_is_refused(
    world: World, node_id: str, contact: str, code: str
) -> None:
    answer = await world.ask(world.command(node_id, contact))
    assert (answer.result, answer.code) == ("refused", code)
    assert await world.pool.fetchval("SELECT count(*) FROM simulator_messages") == 0
    assert await world.pool.fetchval("SELECT count(*) FROM execution_logs") == 0


async def test_another_users_contact_or_campaign_is_not_found(world: World) -> None:
    other = await world.pool.fetchval(
        "INSERT INTO users (email) VALUES ('other@example.com') RETURNING id"
    )
    theirs = await world.pool.fetchval(
        "INSERT INTO contacts (owner_user_id, telegram_username) VALUES ($1, 'theirs')"
        " RETURNING id",
        other,
    )
    command = world.command()
    foreign = await world.ask(command.model_copy(update={"contact_id": theirs}))
    assert (foreign.result, foreign.code) == ("refused", "contact_not_found")
    stranger = await world.ask(command, actor=Actor(user_id=other))
    assert (stranger.result, stranger.code) == ("refused", "campaign_not_found")
    assert await world.pool.fetchval("SELECT count(*) FROM simulator_messages") == 0


@pytest.mark.parametrize("health", ["disconnected", "banned", "limited"])
async def test_an_account_that_is_not_live_sends_no_test(
    pool: asyncpg.Pool[Any], health: str
) -> None:
    world = World(pool)
    await world.build(health=health)
    answer = await world.ask(world.command())
    assert (answer.result, answer.code) == ("refused", "account_unavailable")
    assert await pool.fetchval("SELECT count(*) FROM simulator_messages") == 0


async def test_a_campaign_without_an_account_is_refused(world: World) -> None:
    await world.pool.execute("UPDATE campaigns SET telegram_account_id = NULL")
    answer = await world.ask(world.command())
    assert (answer.result, answer.code) == ("refused", "campaign_has_no_account")


async def test_five_test_sends_a_minute_per_account_then_a_wait(world: World) -> None:
    for i in range(5):
        answer = await world.ask(world.command(), now=NOW + timedelta(seconds=i))
        assert answer.result == "sent"
    refused = await world.ask(world.command(), now=NOW + timedelta(seconds=10))
    assert (refused.result, refused.code, refused.retry_after_s) == (
        "refused", "test_send_rate_limited", 50,
    )  # fmt: skip
    later = await world.ask(world.command(), now=NOW + timedelta(seconds=61))
    assert later.result == "sent"
    assert await world.pool.fetchval("SELECT count(*) FROM simulator_messages") == 6


async def test_a_failure_telegram_reports_is_answered_and_logged(world: World) -> None:
    await world.pool.execute(
        "UPDATE telegram_accounts SET simulation = '{\"revoked\": true}'::jsonb"
    )
    answer = await world.ask(world.command())
    assert (answer.result, answer.code) == ("failed", "auth_lost")
    logged = await world.pool.fetchrow("SELECT event, status FROM execution_logs")
    assert logged is not None
    assert tuple(logged) == ("test_send_failed", "failed")
    # A test reports the failure; the account's health is left to its check.
    health = await world.pool.fetchval("SELECT health_status FROM telegram_accounts")
    assert health == "active"
