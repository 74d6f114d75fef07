"""POST /campaign-flows/{id}/test-send through HTTP: what the API refuses before it asks the
sender, each with its own code, and that nothing is asked of the sender then. (The send itself
goes through the sender: tests/services/sender/test_test_send.py, tests/e2e/test_test_send.py.)"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from tests.api.conftest import Person, PersonFactory
from tests.builders import FLOW, account, campaign, contact, ok


@pytest.fixture
async def ada(person: PersonFactory) -> Person:
    return await person("ada")


async def asked(db: asyncpg.Pool[Any], account_id: str) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'account.test_send'"
            " AND convert_from(value, 'UTF8')::jsonb->'payload'->>'telegram_account_id' = $1",
            account_id,
        )
    )


async def test_what_cannot_be_tested_is_refused_before_the_sender_is_asked(
    ada: Person, person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    sender = await account(ada.client)
    made = await campaign(ada.client, flow=FLOW, telegram_account_id=sender["id"])
    bare = await campaign(ada.client, name="No account", flow=FLOW)
    someone = await contact(ada.client, "grace")
    bob = await person("bob")
    theirs = await contact(bob.client, "bobs_friend")

    async def refused(campaign_id: str, body: dict[str, Any], by: Person = ada) -> tuple[int, str]:
        response = await by.client.post(f"/campaign-flows/{campaign_id}/test-send", json=body)
        assert response.headers["content-type"] == "application/problem+json", response.text
        return response.status_code, response.json()["code"]

    cases = [
        (made["id"], {"node_id": "wait", "contact_id": someone["id"]}, ada,
         (422, "not_a_send_step")),
        (made["id"], {"node_id": "nowhere", "contact_id": someone["id"]}, ada,
         (422, "node_not_found")),
        (made["id"], {"node_id": "hello", "contact_id": theirs["id"]}, ada,
         (404, "contact_not_found")),
        (made["id"], {"node_id": "hello", "contact_id": someone["id"]}, bob,
         (404, "campaign_not_found")),
        (made["id"], {"node_id": "hello"}, ada, (422, "validation_error")),
        (bare["id"], {"node_id": "hello", "contact_id": someone["id"]}, ada,
         (409, "campaign_has_no_account")),
    ]  # fmt: skip
    for campaign_id, body, by, expected in cases:
        assert await refused(campaign_id, body, by) == expected, body
    await db.execute(
        "UPDATE telegram_accounts SET health_status = 'disconnected' WHERE id = $1",
        sender["id"],
    )
    body = {"node_id": "hello", "contact_id": someone["id"]}
    assert await refused(made["id"], body) == (409, "account_unavailable")
    assert await asked(db, sender["id"]) == 0
    # The campaign's log holds no test: nothing was sent.
    logs = ok(await ada.client.get(f"/campaign-flows/{made['id']}/logs"))
    assert logs["items"] == []
