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


async def test_the_same_key_in_another_context_is_another_request(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    """The acting organization belongs to the request: a key first used in personal mode must
    not replay the personal contact to a call made for an organization."""
    ann = await person("ann")
    org = ok(await ann.client.post("/organizations", json={"name": "Keyed Ltd"}), 201)["id"]
    headers = {"Idempotency-Key": "contact-1"}
    body = {"telegram_username": "keyed_contact"}
    personal = await ann.client.post("/contacts", json=body, headers=headers)
    assert (personal.status_code, personal.json()["organization_id"]) == (201, None)
    in_org = await ann.at(org).post("/contacts", json=body, headers=headers)
    assert (in_org.status_code, in_org.json()["code"]) == (422, "idempotency_key_reused")
    assert "idempotent-replayed" not in in_org.headers
    # The same organization spelled in capitals is the same context: a replay.
    again = await ann.at(org.upper()).post("/contacts", json=body, headers=headers)
    assert (again.status_code, again.json()["code"]) == (422, "idempotency_key_reused")
    first_org = await ann.at(org).post(
        "/contacts", json=body, headers={"Idempotency-Key": "contact-2"}
    )
    assert (first_org.status_code, first_org.json()["organization_id"]) == (201, org)
    replayed = await ann.at(org.upper()).post(
        "/contacts", json=body, headers={"Idempotency-Key": "contact-2"}
    )
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == first_org.json()
    personal_again = await ann.client.post(
        "/contacts", json=body, headers={"Idempotency-Key": "contact-2"}
    )
    assert (personal_again.status_code, personal_again.json()["code"]) == (
        422,
        "idempotency_key_reused",
    )
    stored = await db.fetch(
        "SELECT organization_id FROM contacts WHERE owner_user_id = $1", ann.user_id
    )
    assert sorted(str(r["organization_id"]) for r in stored) == sorted(["None", org])


async def test_the_same_key_on_another_path_is_another_request(person: PersonFactory) -> None:
    ann = await person("ann")
    headers = {"Idempotency-Key": "path-1"}
    created = await ann.client.post(
        "/contacts", json={"telegram_username": "pathy"}, headers=headers
    )
    assert created.status_code == 201
    other = await ann.client.post("/campaign-flows", json={"name": "pathy"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
