"""Test data that more than one test module uses: flows, consumed records, pacing, and building
through the HTTP API the way a client would."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx

# start -> send -> wait for a reply (a day) -> end either way
FLOW: dict[str, Any] = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}!"},
        {"id": "wait", "type": "wait_for_reply", "timeout_seconds": 86400},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "wait"},
        {"from": "wait", "to": "end", "when": "replied"},
        {"from": "wait", "to": "end", "when": "timed_out"},
    ],
}


# Both branches of a wait in a few seconds: a delay, a second send, a short reply timeout.
BRANCHING_FLOW: dict[str, Any] = {
    "start": "hello",
    "nodes": [
        {"id": "hello", "type": "send_message", "text": "Hi {first_name}!"},
        {"id": "pause", "type": "delay", "seconds": 1},
        {"id": "ask", "type": "send_message", "text": "Any thoughts, {first_name}?"},
        {"id": "wait", "type": "wait_for_reply", "timeout_seconds": 3},
        {"id": "thanks", "type": "send_message", "text": "Thanks!"},
        {"id": "bye", "type": "send_message", "text": "Bye for now"},
        {"id": "done", "type": "end"},
    ],
    "edges": [
        {"from": "hello", "to": "pause"},
        {"from": "pause", "to": "ask"},
        {"from": "ask", "to": "wait"},
        {"from": "wait", "to": "thanks", "when": "replied"},
        {"from": "wait", "to": "bye", "when": "timed_out"},
        {"from": "thanks", "to": "done"},
        {"from": "bye", "to": "done"},
    ],
}

# An account that sends as fast as it is asked to.
FAST = {"min_gap_s": 0, "jitter_s": 0}

SEND = {"id": "hello", "type": "send_message", "text": "Hi {first_name}!"}
END = {"id": "end", "type": "end"}


def flow(
    nodes: list[dict[str, Any]], edges: list[dict[str, Any]], start: str = "hello"
) -> dict[str, Any]:
    return {"start": start, "nodes": nodes, "edges": edges}


def edge(
    source: str, target: str, when: str = "next", edge_id: str | None = None
) -> dict[str, Any]:
    out = {"from": source, "to": target, "when": when}
    if edge_id:
        out["id"] = edge_id
    return out


EVERY_TYPE = flow(
    [
        SEND,
        {"id": "wait", "type": "wait_for_reply", "timeout_seconds": 86400},
        {"id": "replied?", "type": "condition", "condition": {"kind": "replied"}},
        {
            "id": "vip?",
            "type": "condition",
            "condition": {"kind": "field_equals", "field": "tier", "value": "gold"},
        },
        {"id": "tagged?", "type": "condition", "condition": {"kind": "has_tag", "tag": "hot"}},
        {
            "id": "split",
            "type": "ab_split",
            "variants": [{"name": "a", "weight": 70}, {"name": "b", "weight": 30}],
        },
        {"id": "tag", "type": "add_tag", "tag": "engaged"},
        {"id": "untag", "type": "remove_tag", "tag": "cold"},
        {"id": "pause", "type": "delay", "seconds": 3600},
        {"id": "again", "type": "send_message", "text": "Still there, {first_name}?"},
        END,
    ],
    [
        edge("hello", "wait"),
        edge("wait", "replied?", "replied"),
        edge("wait", "pause", "timed_out"),
        edge("pause", "again"),
        edge("again", "end"),
        edge("replied?", "vip?", "true"),
        edge("replied?", "end", "false"),
        edge("vip?", "tagged?", "true"),
        edge("vip?", "split", "false"),
        edge("tagged?", "tag", "true"),
        edge("tagged?", "untag", "false"),
        edge("split", "tag", "a"),
        edge("split", "untag", "b"),
        edge("tag", "end"),
        edge("untag", "end"),
    ],
)


@dataclass
class FakeRecord:
    """A consumed record as the broker hands it over (the Kafka part is not under test here)."""

    value: bytes | None
    offset: int
    key: bytes | None = b"k"
    topic: str = "dripline.campaign.commands"
    partition: int = 0
    headers: Sequence[tuple[str, bytes]] = field(default_factory=list)


# When the rows below were made.
AT = datetime(2030, 1, 7, 9, tzinfo=UTC)


def operation_row(**changes: Any) -> dict[str, Any]:
    """The columns of a bulk_operations row (shared/db/rows.py's BulkOperationRow): a launch of
    three campaigns, one done."""
    row: dict[str, Any] = {
        "id": uuid4(),
        "organization_id": None,
        "requested_by": uuid4(),
        "action": "launch",
        "selection": {"campaign_ids": []},
        "status": "processing",
        "total": 3,
        "processed": 1,
        "success_count": 1,
        "skipped_count": 0,
        "error_count": 0,
        "cancelled_executions": 0,
        "created_at": AT,
        "started_at": AT,
        "completed_at": None,
        "options": {},
        "origin": "http",
        "correlation_id": None,
        "error_message": None,
        "updated_at": AT,
    }
    return row | changes


def execution_row(**changes: Any) -> dict[str, Any]:
    """The columns of the sender's lock_executions (shared/db/rows.py's ExecutionRow): a pending
    execution of an active campaign with an account, standing on s1 of TWO_SENDS."""
    row: dict[str, Any] = {
        "id": UUID("00000000-0000-0000-0000-0000000000e1"),
        "campaign_id": UUID("00000000-0000-0000-0000-0000000000c1"),
        "contact_id": UUID("00000000-0000-0000-0000-0000000000a1"),
        "status": "pending",
        "current_node_id": "s1",
        "next_execution_at": None,
        "lease_until": None,
        "variant": None,
        "context": {},
        "started_at": None,
        "taken_over_at": None,
        "flow_json": json.dumps(TWO_SENDS),
        "settings_json": None,
        "timezone": "UTC",
        "campaign_status": "active",
        "campaign_enabled": True,
        "campaign_deleted_at": None,
        "account_id": UUID("00000000-0000-0000-0000-0000000000b1"),
        "campaign_created_by": UUID("00000000-0000-0000-0000-0000000000d1"),
        "telegram_username": "ada",
        "phone": None,
        "telegram_user_id": None,
        "contact_tags": [],
        "custom_fields": {},
        "first_name": "Ada",
        "last_name": None,
        "contact_deleted_at": None,
        "contact_time_zone": None,
        "opportunity_stages": None,
        "do_not_contact": False,
        "recontact_after_days": None,
        "last_messaged_elsewhere": None,
        "messaged_here": False,
    }
    return row | changes


# start -> send s1 -> send s2 -> end: a step after a send is another send
TWO_SENDS: dict[str, Any] = {
    "start": "s1",
    "nodes": [
        {"id": "s1", "type": "send_message", "text": "first"},
        {"id": "s2", "type": "send_message", "text": "second"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "s1", "to": "s2"}, {"from": "s2", "to": "end"}],
}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def account(client: httpx.AsyncClient, name: str = "Sales 1") -> dict[str, Any]:
    return ok(await client.post("/telegram-accounts", json={"display_name": name}), 201)  # type: ignore[no-any-return]


async def contact(client: httpx.AsyncClient, username: str, **fields: Any) -> dict[str, Any]:
    body = {"telegram_username": username, "first_name": username.title(), **fields}
    return ok(await client.post("/contacts", json=body), 201)  # type: ignore[no-any-return]


async def campaign(
    client: httpx.AsyncClient, name: str = "Campaign", **fields: Any
) -> dict[str, Any]:
    return ok(await client.post("/campaign-flows", json={"name": name, **fields}), 201)  # type: ignore[no-any-return]


async def add_contacts(
    client: httpx.AsyncClient, campaign_id: str, contact_ids: list[str]
) -> dict[str, Any]:
    return ok(  # type: ignore[no-any-return]
        await client.post(
            f"/campaign-flows/{campaign_id}/contacts", json={"contact_ids": contact_ids}
        )
    )


async def launchable(
    client: httpx.AsyncClient, name: str = "Launchable", contacts: int = 1, **fields: Any
) -> dict[str, Any]:
    """A draft with a healthy account, a valid flow and `contacts` contacts: ready to launch."""
    sender = await account(client)
    created = await campaign(client, name, telegram_account_id=sender["id"], flow=FLOW, **fields)
    people = [
        (await contact(client, f"{name.lower().replace(' ', '')}p{i}xx"))["id"]
        for i in range(contacts)
    ]
    if people:
        await add_contacts(client, created["id"], people)
    return ok(await client.get(f"/campaign-flows/{created['id']}"))  # type: ignore[no-any-return]


async def command(
    client: httpx.AsyncClient, campaign_id: str, action: str, **params: Any
) -> httpx.Response:
    if action == "delete":
        return await client.delete(f"/campaign-flows/{campaign_id}")
    return await client.post(f"/campaign-flows/{campaign_id}/{action}", params=params)
