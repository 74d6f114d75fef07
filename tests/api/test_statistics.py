"""Statistics over HTTP: who may read them, and what the answers hold before any event.
(The figures of a campaign that ran are checked end to end in tests/e2e/test_statistics.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from tests.api.conftest import Organization, PersonFactory, set_admin_view
from tests.builders import add_contacts, campaign, contact, ok
from tests.support import eventually


async def test_statistics_are_visible_exactly_where_the_campaign_is(
    organization: Organization, person: PersonFactory
) -> None:
    member = organization.member.at(organization.id)
    theirs = await campaign(member, "Member's")
    path = f"/campaign-flows/{theirs['id']}/statistics"
    assert ok(await member.get(path))["campaign_id"] == theirs["id"]
    # Another member never sees it; owner and admin only with admin view on.
    other = organization.other_member.at(organization.id)
    assert (await other.get(path)).status_code == 404
    owner = organization.owner.at(organization.id)
    assert (await owner.get(path)).status_code == 404
    await set_admin_view(organization, True)
    assert (await owner.get(path)).status_code == 200
    assert (await organization.admin.at(organization.id).get(path)).status_code == 200
    assert (await other.get(path)).status_code == 404
    stranger = await person("stranger")
    assert (await stranger.client.get(path)).status_code == 404
    compared = ok(await other.post("/statistics/compare", json={"campaign_ids": [theirs["id"]]}))
    assert compared["campaigns"] == []
    assert compared["not_found"] == [theirs["id"]]
    assert (await member.get(f"/campaign-flows/{uuid.uuid4()}/statistics")).status_code == 404


async def test_a_campaign_before_and_after_its_first_event(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    someone = (await person("counter")).client
    created = await campaign(someone, "Fresh")
    path = f"/campaign-flows/{created['id']}/statistics"
    before = ok(await someone.get(path))
    # No event has named it yet: counted for the request, all zeros, rates zero (0 / 0).
    assert before["materialized"] is False
    assert before["total_contacts"] == 0
    assert (before["completion_rate"], before["response_rate"], before["delivery_rate"]) == (
        0, 0, 0,
    )  # fmt: skip
    people = [(await contact(someone, f"fresh{i}{uuid.uuid4().hex[:6]}"))["id"] for i in range(3)]
    await add_contacts(someone, created["id"], people)

    async def counted() -> Any:
        served = ok(await someone.get(path))
        return served if served["materialized"] else None

    served = await eventually(counted)
    assert served["total_contacts"] == 3
    assert served["executions_by_status"] == {"pending": 3}
    assert served["contacts_started"] == 0
    row = await db.fetchrow("SELECT * FROM get_campaign_statistics($1)", created["id"])
    assert row is not None
    assert row["total_contacts"] == 3


async def test_compare_validates_its_request(person: PersonFactory) -> None:
    someone = (await person("comparer")).client
    bodies: list[dict[str, Any]] = [
        {"campaign_ids": []}, {"campaign_ids": ["nope"]}, {},
        {"campaign_ids": [str(uuid.uuid4()) for _ in range(101)]},
    ]  # fmt: skip
    for body in bodies:
        response = await someone.post("/statistics/compare", json=body)
        assert response.status_code == 422, body
        assert response.json()["code"] == "validation_error"
    # The same id twice is compared once.
    mine = await campaign(someone, "Twice")
    compared = ok(
        await someone.post("/statistics/compare", json={"campaign_ids": [mine["id"], mine["id"]]})
    )
    assert [c["campaign_id"] for c in compared["campaigns"]] == [mine["id"]]
