"""The unified inbox through the real services with the simulated Telegram (issue 15, item 6;
docs/inbox.md): a reply shows as an unread conversation (and `conversation.message_received`),
the filters and the history read it, marking it read clears it, and a person's answer is sent
by the sender from the account and takes the conversation over: its execution takes no more
automatic steps until released, while another contact's flow goes on. The `stack` fixture ends
with the statistics equal to the recount."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from shared.messaging.topics import Topic
from tests.builders import FAST, add_contacts, contact, ok
from tests.e2e.conftest import Stack
from tests.support import eventually, read_topic, topic

DELAY_S = 8  # between the first message and the follow-up: the answer comes in between
FOLLOW_UP_FLOW: dict[str, Any] = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}!"},
        {"id": "pause", "type": "delay", "seconds": DELAY_S},
        {"id": "again", "type": "send_message", "text": "Following up"},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "pause"},
        {"from": "pause", "to": "again"},
        {"from": "again", "to": "end"},
    ],
}


async def simulated(pool: asyncpg.Pool[Any], account: str, peer: str) -> list[str]:
    """What the simulated Telegram received from the account for this peer, in order."""
    rows = await pool.fetch(
        "SELECT body FROM simulator_messages WHERE account_id = $1 AND peer = $2"
        " ORDER BY message_id",
        account,
        peer,
    )
    return [r["body"] for r in rows]


async def test_a_reply_shows_in_the_inbox_and_an_answer_takes_the_conversation_over(
    stack: Stack, pool: asyncpg.Pool[Any]
) -> None:
    api = stack.api
    started = datetime.now(UTC)
    simulation = {
        "contacts": {
            "inbox_ada": {"read_after_s": 0, "reply_after_s": 1, "reply_text": "Tell me more"},
            "inbox_bob": {},
        }
    }
    body = {"display_name": "Inbox", "pacing": FAST, "simulation": simulation}
    account = ok(await api.post("/telegram-accounts", json=body), 201)["id"]
    created = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Inbox",
                "telegram_account_id": account,
                "flow": FOLLOW_UP_FLOW,
                "settings": {"response_handling": {"stop_on_reply": False}},
            },
        ),
        201,
    )
    campaign = created["id"]
    ada = await contact(api, "inbox_ada", first_name="Ada", tags=["vip"])
    bob = await contact(api, "inbox_bob", first_name="Bob")
    await add_contacts(api, campaign, [ada["id"], bob["id"]])
    ok(await api.post(f"/campaign-flows/{campaign}/launch"))

    async def replied() -> Any:
        page = ok(await api.get("/conversations", params={"unread": "true"}))
        return page["items"] if page["items"] else None

    [conversation] = await eventually(replied, timeout_s=DELAY_S - 2)
    assert conversation["contact_id"] == ada["id"]
    assert (conversation["last_direction"], conversation["last_body"]) == (
        "incoming",
        "Tell me more",
    )
    assert conversation["unread_count"] == 1
    assert (conversation["campaign_id"], conversation["telegram_account_id"]) == (
        campaign,
        account,
    )
    assert conversation["taken_over"] is False
    cid = conversation["id"]

    # A person answers at once, within the flow's delay: the conversation is taken over.
    answer = await api.post(f"/conversations/{cid}/messages", json={"text": "Happy to, Ada"})
    queued = ok(answer, 202)
    assert (queued["direction"], queued["status"], queued["execution_id"]) == (
        "outgoing",
        "queued",
        None,
    )

    async def answered() -> bool:
        return "Happy to, Ada" in await simulated(pool, account, "inbox_ada")

    await eventually(answered, timeout_s=30)

    # Bob's flow goes on past the delay; Ada's, taken over, does not.
    async def bob_followed_up() -> bool:
        return "Following up" in await simulated(pool, account, "inbox_bob")

    await eventually(bob_followed_up, timeout_s=60)
    await asyncio.sleep(2)  # past the moment Ada's follow-up was due with Bob's
    assert await simulated(pool, account, "inbox_ada") == ["Hi Ada!", "Happy to, Ada"]

    # The simulated Ada replies to every message, the answer too: that reply (to a message of
    # no execution) is the conversation's as well.
    async def history_of(count: int) -> Any:
        items = ok(await api.get(f"/conversations/{cid}/messages"))["items"]
        return items if len(items) == count else None

    history = await eventually(lambda: history_of(4), timeout_s=30)
    assert [(m["direction"], m["body"]) for m in history] == [
        ("outgoing", "Hi Ada!"),
        ("incoming", "Tell me more"),
        ("outgoing", "Happy to, Ada"),
        ("incoming", "Tell me more"),
    ]
    assert history[0]["status"] in ("delivered", "read")  # the reply confirmed it
    assert (history[1]["status"], history[2]["status"]) == ("received", "sent")
    assert history[2]["execution_id"] is None
    shown = ok(await api.get(f"/conversations/{cid}"))
    assert shown["taken_over"] is True
    assert shown["taken_over_by"] == str(stack.user_id)
    assert (shown["last_direction"], shown["last_body"]) == ("incoming", "Tell me more")
    assert shown["unread_count"] == 1  # answering read the first; the second is new
    assert await simulated(pool, account, "inbox_ada") == ["Hi Ada!", "Happy to, Ada"]
    # One page at a time, in the same order.
    first = ok(await api.get(f"/conversations/{cid}/messages", params={"limit": 2}))
    rest = ok(
        await api.get(
            f"/conversations/{cid}/messages", params={"limit": 2, "cursor": first["next_cursor"]}
        )
    )
    assert [m["id"] for m in first["items"] + rest["items"]] == [m["id"] for m in history]
    assert rest["next_cursor"] is None

    # The filters.
    async def listed(**params: Any) -> list[str]:
        page = ok(await api.get("/conversations", params=params))
        return [item["contact_id"] for item in page["items"]]

    assert set(await listed()) == {ada["id"], bob["id"]}
    assert await listed(tag="vip") == [ada["id"]]
    assert await listed(replied_since=started.isoformat()) == [ada["id"]]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await listed(replied_since=later) == []
    assert set(await listed(account_id=account, campaign_id=campaign)) == {ada["id"], bob["id"]}
    assert await listed(unread="true") == [ada["id"]]
    one = ok(await api.get("/conversations", params={"limit": 1}))
    two = ok(await api.get("/conversations", params={"limit": 1, "cursor": one["next_cursor"]}))
    assert {one["items"][0]["id"], two["items"][0]["id"]} == {
        cid,
        next(c for c in await _all(stack) if c["contact_id"] == bob["id"])["id"],
    }
    assert two["next_cursor"] is None

    # Released, Ada's flow goes on where it stood: its follow-up (due meanwhile) is sent.
    released = ok(await api.post(f"/conversations/{cid}/release"))
    assert released["taken_over"] is False

    async def ada_followed_up() -> bool:
        return "Following up" in await simulated(pool, account, "inbox_ada")

    await eventually(ada_followed_up, timeout_s=60)

    events = [
        json.loads(r.value)
        for r in await read_topic(
            stack.settings.bootstrap_servers,
            topic(stack.settings, Topic.CONVERSATION_EVENTS),
            expected=3,
        )
    ]
    kinds = [(e["type"], e["payload"]["conversation_id"]) for e in events]
    assert kinds[:3] == [  # and another reply, to the follow-up, may have come by now
        ("conversation.message_received", cid),
        ("conversation.taken_over", cid),
        ("conversation.message_received", cid),
    ]
    assert events[0]["payload"]["body"] == "Tell me more"
    assert events[0]["payload"]["unread_count"] == 1
    assert events[1]["payload"]["taken_over_by"] == str(stack.user_id)
    assert events[2]["payload"]["unread_count"] == 1


async def _all(stack: Stack) -> list[dict[str, Any]]:
    return list(ok(await stack.api.get("/conversations"))["items"])


async def test_marking_read_clears_the_unread_count_and_bad_input_is_a_problem(
    stack: Stack,
) -> None:
    api = stack.api
    simulation = {"contacts": {"read_ada": {"reply_after_s": 0, "reply_text": "Hello there"}}}
    body = {"display_name": "Reader", "pacing": FAST, "simulation": simulation}
    account = ok(await api.post("/telegram-accounts", json=body), 201)["id"]
    created = ok(
        await api.post(
            "/campaign-flows",
            json={
                "name": "Reader",
                "telegram_account_id": account,
                "flow": FOLLOW_UP_FLOW,
                "settings": {"response_handling": {"stop_on_reply": True}},
            },
        ),
        201,
    )
    ada = await contact(api, "read_ada", first_name="Ada")
    await add_contacts(api, created["id"], [ada["id"]])
    ok(await api.post(f"/campaign-flows/{created['id']}/launch"))

    async def replied() -> Any:
        page = ok(await api.get("/conversations", params={"unread": "true"}))
        return page["items"][0] if page["items"] else None

    conversation = await eventually(replied, timeout_s=30)
    read = ok(await api.post(f"/conversations/{conversation['id']}/read"))
    assert read["unread_count"] == 0
    assert ok(await api.get("/conversations", params={"unread": "true"}))["items"] == []
    # Bad input: a specific problem, never a 500.
    empty = await api.post(f"/conversations/{conversation['id']}/messages", json={"text": " "})
    assert empty.status_code == 422
    missing = await api.get("/conversations/00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.json()["code"]) == (404, "conversation_not_found")
    bad_cursor = await api.get("/conversations", params={"cursor": "nonsense"})
    assert (bad_cursor.status_code, bad_cursor.json()["code"]) == (400, "invalid_cursor")
