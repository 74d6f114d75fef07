"""Building test data through the HTTP API, the way a client would."""

from __future__ import annotations

from typing import Any

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
