"""The inbox's answers that need no Telegram (docs/inbox.md): a person may not answer a
deleted contact, a listed one, or from a deleted account (409 with the reason, nothing queued,
the conversation not taken over). The conversation is written straight into the live database,
as the sender writes it with a campaign's first send."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from tests.api.conftest import Person, PersonFactory
from tests.builders import account, campaign, contact, ok


@pytest.fixture
async def ivy(person: PersonFactory) -> Person:
    return await person("ivy")


async def conversation(db: asyncpg.Pool[Any], ivy: Person) -> tuple[str, str, str]:
    """(conversation, account, contact)."""
    sender = await account(ivy.client, "Inbox")
    person = await contact(ivy.client, f"inbox{uuid.uuid4().hex[:10]}")
    created = await campaign(ivy.client, "Inbox", telegram_account_id=sender["id"])
    found = await db.fetchval(
        "INSERT INTO conversations (telegram_account_id, contact_id, campaign_id,"
        " last_direction, last_body, last_message_at, unread_count)"
        " VALUES ($1, $2, $3, 'incoming', 'Hello?', now(), 1) RETURNING id",
        sender["id"],
        person["id"],
        created["id"],
    )
    return str(found), sender["id"], person["id"]


@pytest.mark.parametrize("gone", ["contact_deleted", "do_not_contact", "account_deleted"])
async def test_no_answer_to_someone_who_may_not_be_written_to(
    db: asyncpg.Pool[Any], ivy: Person, gone: str
) -> None:
    cid, account_id, contact_id = await conversation(db, ivy)
    match gone:
        case "contact_deleted":
            assert (await ivy.client.delete(f"/contacts/{contact_id}")).status_code == 204
        case "do_not_contact":
            body = {"kind": "contact", "value": contact_id, "reason": "request"}
            ok(await ivy.client.post("/do-not-contact", json=body), 201)
        case _:
            assert (await ivy.client.delete(f"/telegram-accounts/{account_id}")).status_code == 204
    answer = await ivy.client.post(f"/conversations/{cid}/messages", json={"text": "Hi again"})
    assert (answer.status_code, answer.json()["code"]) == (409, gone)
    queued = await db.fetchval(
        "SELECT count(*) FROM messages WHERE contact_id = $1 AND direction = 'outgoing'",
        contact_id,
    )
    assert queued == 0
    assert ok(await ivy.client.get(f"/conversations/{cid}"))["taken_over"] is False


async def test_an_answer_is_queued_for_the_sender_and_takes_the_conversation_over(
    db: asyncpg.Pool[Any], ivy: Person
) -> None:
    cid, account_id, _ = await conversation(db, ivy)
    queued = ok(
        await ivy.client.post(f"/conversations/{cid}/messages", json={"text": "  Hi again "}),
        202,
    )
    assert (queued["body"], queued["status"], queued["execution_id"]) == (
        "Hi again",
        "queued",
        None,
    )
    shown = ok(await ivy.client.get(f"/conversations/{cid}"))
    assert (shown["taken_over"], shown["taken_over_by"], shown["unread_count"]) == (
        True,
        str(ivy.user_id),
        0,
    )
    # The sender's command, keyed by the account, and the take-over event.
    rows = await db.fetch(
        "SELECT topic, key, value, headers->>'message-type' AS type FROM outbox"
        " WHERE headers->>'message-type' IN ('conversation.send', 'conversation.taken_over')"
        " AND convert_from(value, 'UTF8') LIKE '%' || $1 || '%' ORDER BY id",
        cid,
    )
    sent = [(r["topic"], r["type"], json.loads(bytes(r["value"]))["payload"]) for r in rows]
    assert [(topic, kind) for topic, kind, _ in sent] == [
        ("dripline.conversation.events", "conversation.taken_over"),
        ("dripline.account.commands", "conversation.send"),
    ]
    assert sent[1][2] == {
        "telegram_account_id": account_id,
        "conversation_id": cid,
        "message_id": queued["id"],
    }
    # A second answer is queued too, and the conversation stays taken over by the first.
    ok(await ivy.client.post(f"/conversations/{cid}/messages", json={"text": "Still there?"}), 202)
    history = ok(await ivy.client.get(f"/conversations/{cid}/messages"))["items"]
    assert [m["body"] for m in history] == ["Hi again", "Still there?"]
    released = ok(await ivy.client.post(f"/conversations/{cid}/release"))
    assert (released["taken_over"], released["taken_over_by"]) == (False, None)
    too_long = await ivy.client.post(f"/conversations/{cid}/messages", json={"text": "x" * 4097})
    assert too_long.status_code == 422
