"""The fleet circuit breaker through the API (issue 14, item 4): an organization's policy in its
settings (validated, with problem codes), and the reason on the campaigns while it is tripped."""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.api.conftest import Organization, PersonFactory
from tests.builders import account, campaign, ok

DEFAULTS = {"share": 0.6, "min_accounts": 2, "hysteresis": 0.1}


async def test_an_organization_sets_its_breaker_policy(organization: Organization) -> None:
    owner, org = organization.owner.client, organization.id
    assert ok(await owner.get(f"/organizations/{org}"))["fleet_breaker"] == DEFAULTS

    policy = {"share": 0.8, "min_accounts": 3}
    changed = ok(
        await owner.patch(
            f"/organizations/{org}", json={"fleet_breaker": policy, "recontact_after_days": 7}
        )
    )
    assert changed["fleet_breaker"] == {"share": 0.8, "min_accounts": 3, "hysteresis": 0.1}
    assert changed["recontact_after_days"] == 7
    # Another setting changed alone leaves the policy as it was.
    again = ok(await owner.patch(f"/organizations/{org}", json={"recontact_after_days": None}))
    assert again["fleet_breaker"] == changed["fleet_breaker"]

    bad = await owner.patch(
        f"/organizations/{org}", json={"fleet_breaker": {"share": 0.3, "hysteresis": 0.3}}
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "fleet_breaker_invalid"
    for field, value in (("share", 0), ("share", 1.5), ("min_accounts", 0), ("hysteresis", -1)):
        out_of_range = await owner.patch(
            f"/organizations/{org}", json={"fleet_breaker": {field: value}}
        )
        assert out_of_range.status_code == 422, (field, value)
        assert out_of_range.json()["code"] == "validation_error"
    member = await organization.member.client.patch(
        f"/organizations/{org}", json={"fleet_breaker": {"share": 0.9}}
    )
    assert member.json()["code"] == "permission_denied"
    assert ok(await owner.get(f"/organizations/{org}"))["fleet_breaker"]["share"] == 0.8

    restored = ok(await owner.patch(f"/organizations/{org}", json={"fleet_breaker": None}))
    assert restored["fleet_breaker"] == DEFAULTS


async def test_campaigns_show_why_the_breaker_paused_their_sending(
    organization: Organization, person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    client = organization.owner.at(organization.id)
    sender = await account(client)
    shown = await campaign(client, "Fleet", telegram_account_id=sender["id"])
    assert shown["sending_paused_reason"] is None
    # Someone else's personal campaign, in another context.
    outsider = await person("solo")
    personal = await campaign(
        outsider.client, "Solo", telegram_account_id=(await account(outsider.client))["id"]
    )

    reason = "3 of 4 sending accounts are limited, frozen or in a flood cooldown within the last"
    await db.execute(
        "INSERT INTO fleet_breakers (organization_id, tripped_at, reason, troubled, sending,"
        " evaluated_at) VALUES ($1, now(), $2, 3, 4, now())",
        organization.id,
        reason,
    )
    detail = ok(await client.get(f"/campaign-flows/{shown['id']}"))
    assert detail["sending_paused_reason"] == f"fleet breaker: {reason}"
    for viewed in (
        ok(await client.get(f"/organizations/{organization.id}")),
        ok(await client.get("/organizations"))[0],
        ok(await client.patch(f"/organizations/{organization.id}", json={"name": "Acme 2"})),
    ):
        assert viewed["sending_paused_reason"] == f"fleet breaker: {reason}"
    [listed] = ok(await client.get("/campaign-flows"))["items"]
    assert listed["sending_paused_reason"] == f"fleet breaker: {reason}"
    solo = ok(await outsider.client.get(f"/campaign-flows/{personal['id']}"))
    assert solo["sending_paused_reason"] is None

    # Personal mode: the owner's own breaker.
    await db.execute(
        "INSERT INTO fleet_breakers (user_id, tripped_at, reason, troubled, sending,"
        " evaluated_at) VALUES ($1, now(), 'two of two', 2, 2, now())",
        outsider.user_id,
    )
    solo = ok(await outsider.client.get(f"/campaign-flows/{personal['id']}"))
    assert solo["sending_paused_reason"] == "fleet breaker: two of two"

    await db.execute("UPDATE fleet_breakers SET tripped_at = NULL, reason = NULL")
    detail = ok(await client.get(f"/campaign-flows/{shown['id']}"))
    assert detail["sending_paused_reason"] is None
    viewed = ok(await client.get(f"/organizations/{organization.id}"))
    assert viewed["sending_paused_reason"] is None
