"""Idempotency-Key: a repeated write gets the first answer, and is applied once."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.api.conftest import PersonFactory
from tests.builders import launchable, ok


async def test_a_repeated_create_returns_the_first_campaign(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    ann = await person("ann")
    headers = {"Idempotency-Key": "create-1"}
    first = await ann.client.post("/campaign-flows", json={"name": "Once"}, headers=headers)
    second = await ann.client.post("/campaign-flows", json={"name": "Once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["idempotent-replayed"] == "true"
    count = await db.fetchval("SELECT count(*) FROM campaigns WHERE created_by = $1", ann.user_id)
    assert count == 1

    reused = await ann.client.post("/campaign-flows", json={"name": "Other"}, headers=headers)
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    # Keys are per user: someone else's identical key is theirs alone.
    bob = await person("bob")
    theirs = await bob.client.post("/campaign-flows", json={"name": "Once"}, headers=headers)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != first.json()["id"]


async def test_a_repeated_command_is_published_once(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    ann = await person("ann")
    ready = await launchable(ann.client, "Keyed")
    headers = {"Idempotency-Key": "launch-1"}
    first = ok(await ann.client.post(f"/campaign-flows/{ready['id']}/launch", headers=headers))
    second = await ann.client.post(f"/campaign-flows/{ready['id']}/launch", headers=headers)
    assert second.status_code == 200  # not 409: the answer of the first launch
    assert second.json() == first
    launches = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE headers->>'message-type' = 'campaign.launch'"
        " AND key = convert_to($1, 'UTF8')",
        ready["id"],
    )
    assert launches == 1


async def test_errors_are_replayed_too_and_bad_keys_refused(person: PersonFactory) -> None:
    ann = await person("ann")
    headers = {"Idempotency-Key": "bad-1"}
    first = await ann.client.post("/campaign-flows", json={"name": ""}, headers=headers)
    again = await ann.client.post("/campaign-flows", json={"name": ""}, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.json() == first.json()
    too_long = await ann.client.post(
        "/campaign-flows", json={"name": "x"}, headers={"Idempotency-Key": "k" * 300}
    )
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "header.Idempotency-Key"
