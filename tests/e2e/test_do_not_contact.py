"""The do-not-contact list and opt-out by reply through the real services (issue 15, items 2
and 3): the simulated Telegram answers "Please STOP", which stops the person in both campaigns
they are in and lists them; an entry added over Kafka by another system makes enrolment skip
the contact and a queued send refuse, and a bad command is dead-lettered with the reason. The
`stack` fixture ends each scenario with the statistics equal to the recount (stats verify)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg

from shared.messaging.contracts import DoNotContactAdd
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from tests.builders import FLOW, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually, produce, read_topic, topic

GAP_S = 3
# Waits an hour before its send: the person is in it, unfinished, when they opt out elsewhere.
LATER_FLOW: dict[str, Any] = {
    "start": "pause",
    "nodes": [
        {"id": "pause", "type": "delay", "seconds": 3600},
        {"id": "hello", "type": "send_message", "text": "Hi again"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "pause", "to": "hello"}, {"from": "hello", "to": "end"}],
}


async def running(stack: Stack, name: str, account: str, flow: Any, people: list[str]) -> str:
    created = ok(
        await stack.api.post(
            "/campaign-flows", json={"name": name, "telegram_account_id": account, "flow": flow}
        ),
        201,
    )
    await add_contacts(stack.api, created["id"], people)
    ok(await stack.api.post(f"/campaign-flows/{created['id']}/launch"))
    return str(created["id"])


async def execution(pool: asyncpg.Pool[Any], campaign: str, person: str) -> tuple[str, str]:
    row = await pool.fetchrow(
        "SELECT status, coalesce(error_message, '') AS reason FROM executions"
        " WHERE campaign_id = $1 AND contact_id = $2",
        campaign,
        person,
    )
    assert row is not None
    return row["status"], row["reason"]


async def test_an_opt_out_reply_stops_the_person_in_every_campaign(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    replies = {"read_after_s": 0, "reply_after_s": 1, "reply_text": "Please STOP messaging me"}
    simulation = {"contacts": {"opt_person": replies}}
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={
                "display_name": "Opt",
                "pacing": {"min_gap_s": 0, "jitter_s": 0},
                "simulation": simulation,
            },
        ),
        201,
    )["id"]
    person = (await contact(api, "opt_person"))["id"]
    first = await running(stack, "First", account, FLOW, [person])
    second = await running(stack, "Second", account, LATER_FLOW, [person])

    async def stopped() -> bool:
        return (await execution(pool, first, person))[0] == "completed"

    await eventually(stopped, timeout_s=30)
    assert await execution(pool, first, person) == ("completed", "opted_out")
    assert await execution(pool, second, person) == ("cancelled", "do_not_contact")
    listed = ok(await api.get("/do-not-contact", params={"source": "reply"}))["items"]
    assert {(e["kind"], e["value"], e["reason"]) for e in listed} == {
        ("contact", person, "request"),
        ("username", "opt_person", "request"),
    }

    async def counted() -> Any:
        figures = ok(await api.get(f"/campaign-flows/{first}/statistics"))
        return figures if figures["contacts_opted_out"] == 1 else None

    figures = await eventually(counted, timeout_s=20)
    assert figures["opt_out_rate"] == 100.0  # one opt-out over one delivered message
    assert ok(await api.get(f"/campaign-flows/{second}/statistics"))["contacts_opted_out"] == 0
    # Only the first campaign's message ever reached the person.
    sent = await pool.fetchval("SELECT count(*) FROM simulator_messages WHERE peer = 'opt_person'")
    assert sent == 1


async def test_an_entry_added_over_kafka_skips_enrolment_and_refuses_a_queued_send(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    account = ok(
        await api.post(
            "/telegram-accounts",
            json={"display_name": "Paced", "pacing": {"min_gap_s": GAP_S, "jitter_s": 0}},
        ),
        201,
    )["id"]
    people = {name: (await contact(api, name))["id"] for name in ("k_one", "k_two", "k_three")}
    campaign = await running(stack, "Paced", account, FLOW, list(people.values()))

    async def first_send() -> Any:
        peers = await pool.fetch("SELECT peer FROM simulator_messages")
        return {r["peer"] for r in peers} or None

    reached = await eventually(first_send, timeout_s=30)
    assert len(reached) == 1
    # One whose send waits its turn goes on the list, by another system, by username.
    doomed, survivor = sorted(set(people) - reached)
    commands = topic(stack.settings, Topic.CONTACT_COMMANDS)
    bootstrap = stack.settings.bootstrap_servers
    add = new_envelope(
        type="do_not_contact.add",
        payload=DoNotContactAdd(kind="username", value=f"@{doomed.upper()}", reason="complaint"),
        occurred_at=datetime.now(UTC),
        actor=Actor(user_id=stack.user_id),
        correlation_id=uuid4(),
    )
    await produce(bootstrap, commands, add.to_bytes(), str(stack.user_id).encode())
    bad = json.loads(add.to_bytes())
    bad["message_id"] = str(uuid4())
    bad["payload"]["value"] = "not a phone"
    bad["payload"]["kind"] = "phone"
    await produce(bootstrap, commands, json.dumps(bad).encode(), b"bad")

    async def listed() -> Any:
        entries = ok(await api.get("/do-not-contact"))["items"]
        return entries or None

    (entry,) = await eventually(listed, timeout_s=20)
    assert (entry["kind"], entry["value"], entry["source"], entry["reason"]) == (
        "username",
        doomed,
        "kafka",
        "complaint",
    )
    [letter] = await read_topic(bootstrap, topic(stack.settings, Topic.CONTACT_COMMANDS.dlq),
                                expected=1)  # fmt: skip
    reason = dict(letter.headers)["dlq-reason"].decode()
    assert "country code" in reason, reason
    assert "value" in reason, reason
    [added] = [
        json.loads(r.value)
        for r in await read_topic(
            bootstrap, topic(stack.settings, Topic.CONTACT_EVENTS), expected=1
        )
    ]
    assert (added["type"], added["correlation_id"]) == (
        "do_not_contact.added",
        str(add.correlation_id),
    )

    async def survivor_sent() -> bool:
        peers = await pool.fetch("SELECT peer FROM simulator_messages")
        return survivor in {r["peer"] for r in peers}

    await eventually(survivor_sent, timeout_s=30)
    await asyncio.sleep(GAP_S + 2)  # past every turn the listed one could have had
    peers = {r["peer"] for r in await pool.fetch("SELECT peer FROM simulator_messages")}
    assert doomed not in peers
    assert await execution(pool, campaign, people[doomed]) == ("cancelled", "do_not_contact")

    # Enrolment skips them from now on, and says so.
    later = ok(
        await api.post(
            "/campaign-flows", json={"name": "Later", "telegram_account_id": account, "flow": FLOW}
        ),
        201,
    )
    answer = await add_contacts(api, later["id"], [people[doomed], people[survivor]])
    assert (answer["added"], answer["skipped_do_not_contact"]) == (1, 1)
