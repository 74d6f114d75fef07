"""The inbox's permission cells (tests/permission_matrix.py `expected_inbox`) through HTTP: list,
view, history, mark read, answer and release one's own and another member's conversation, for
each role with admin view on and off, and in personal mode. A conversation follows its
campaign: 404 `conversation_not_found` is "may not see" (and the list leaves it out).

The conversation is written straight into the live database, as the sender writes it with a
campaign's first send (these services run no sender: an answer stays queued, which is what the
API answers for)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from shared.domain.permissions import Decision, Role
from tests.api.conftest import Organization, PersonFactory, set_admin_view
from tests.builders import account, campaign, contact, ok
from tests.permission_matrix import INBOX_CALLS, expected_inbox

# Taking over (answer) before release, so that release has something to release.
ORDER = ["list", "view", "messages", "read", "answer", "release"]


async def conversation(db: asyncpg.Pool[Any], creator: httpx.AsyncClient) -> str:
    """A campaign of the creator's with one conversation, as the sender records it."""
    sender = await account(creator, "Inbox")
    person = await contact(creator, f"inbox{uuid.uuid4().hex[:10]}")
    created = await campaign(creator, "Inbox", telegram_account_id=sender["id"])
    return str(
        await db.fetchval(
            "INSERT INTO conversations (telegram_account_id, contact_id, campaign_id,"
            " last_direction, last_body, last_message_at, unread_count)"
            " VALUES ($1, $2, $3, 'incoming', 'Hello?', now(), 1) RETURNING id",
            sender["id"],
            person["id"],
            created["id"],
        )
    )


async def attempt(client: httpx.AsyncClient, conversation_id: str, call: str) -> Decision:
    path = f"/conversations/{conversation_id}"
    match call:
        case "list":
            listed = [c["id"] for c in ok(await client.get("/conversations"))["items"]]
            return Decision.ALLOWED if conversation_id in listed else Decision.INVISIBLE
        case "view":
            response = await client.get(path)
        case "messages":
            response = await client.get(f"{path}/messages")
        case "read":
            response = await client.post(f"{path}/read")
        case "answer":
            response = await client.post(f"{path}/messages", json={"text": "Hi, it's us"})
        case _:
            response = await client.post(f"{path}/release")
    if response.status_code == 404:
        assert response.json()["code"] == "conversation_not_found", response.text
        return Decision.INVISIBLE
    if response.status_code == 403:
        assert response.json()["code"] == "permission_denied", response.text
        return Decision.FORBIDDEN
    assert response.status_code in (200, 202), response.text
    return Decision.ALLOWED


async def check(
    db: asyncpg.Pool[Any],
    caller: httpx.AsyncClient,
    creator: httpx.AsyncClient,
    cell: tuple[str, Role | None, bool, bool],
) -> None:
    assert set(ORDER) == set(INBOX_CALLS)
    target = await conversation(db, creator)
    wrong = []
    for call in ORDER:
        decision, source = expected_inbox(*cell, call)
        got = await attempt(caller, target, call)
        if got is not decision:
            wrong.append(f"{call}: expected {decision} ({source}), got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("own", [True, False], ids=["own", "others"])
@pytest.mark.parametrize("admin_view", [True, False], ids=["viewOn", "viewOff"])
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER])
async def test_organization_inbox_matrix(
    db: asyncpg.Pool[Any], organization: Organization, role: Role, admin_view: bool, own: bool
) -> None:
    await set_admin_view(organization, admin_view)
    caller = organization.people()[role.value]
    creator = caller if own else organization.other_member
    await check(
        db,
        caller.at(organization.id),
        creator.at(organization.id),
        ("organization", role, admin_view, own),
    )


@pytest.mark.parametrize("own", [True, False], ids=["own", "others"])
async def test_personal_inbox_matrix(
    db: asyncpg.Pool[Any], person: PersonFactory, own: bool
) -> None:
    caller, stranger = await person("me"), await person("stranger")
    creator = caller if own else stranger
    await check(db, caller.client, creator.client, ("personal", None, False, own))
