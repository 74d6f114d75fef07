"""The fleet circuit breaker through the API (issue 14, item 4): an organization's policy in its
settings (validated, with problem codes), and the reason on the campaigns while it is tripped."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import httpx

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
    """The live scheduler trips and resets the breakers from the accounts' health (a tripped
    row written by hand is reset by its next sweep, since a paused context is evaluated every
    sweep: CI saw exactly that race), so the accounts are put in trouble as the sender records
    it and the views are read once the scheduler has decided."""
    client = organization.owner.at(organization.id)
    accounts = [(await account(client, f"Sales {n}"))["id"] for n in range(4)]
    shown = await campaign(client, "Fleet", telegram_account_id=accounts[0])
    assert shown["sending_paused_reason"] is None
    # Someone else's personal campaign, in another context.
    outsider = await person("solo")
    personal_accounts = [(await account(outsider.client, f"Own {n}"))["id"] for n in range(2)]
    personal = await campaign(outsider.client, "Solo", telegram_account_id=personal_accounts[0])

    await in_trouble(db, accounts[1:])
    reason = (
        "fleet breaker: 3 of 4 sending accounts are limited, frozen or in a flood cooldown"
        " within the last hour (pausing at 60%)"
    )
    detail = await paused_reason(client, shown["id"], reason)
    assert detail["sending_paused_reason"] == reason
    for viewed in (
        ok(await client.get(f"/organizations/{organization.id}")),
        ok(await client.get("/organizations"))[0],
        ok(await client.patch(f"/organizations/{organization.id}", json={"name": "Acme 2"})),
    ):
        assert viewed["sending_paused_reason"] == reason
    [listed] = ok(await client.get("/campaign-flows"))["items"]
    assert listed["sending_paused_reason"] == reason
    solo = ok(await outsider.client.get(f"/campaign-flows/{personal['id']}"))
    assert solo["sending_paused_reason"] is None

    # Personal mode: the owner's own breaker.
    await in_trouble(db, personal_accounts)
    await paused_reason(
        outsider.client,
        personal["id"],
        "fleet breaker: 2 of 2 sending accounts are limited, frozen or in a flood cooldown"
        " within the last hour (pausing at 60%)",
    )

    # Healthy again, and out of trouble for longer than the window: sending resumes.
    await db.execute(
        "UPDATE telegram_accounts SET health_status = 'active',"
        " troubled_at = now() - interval '2 hours' WHERE id = ANY($1::uuid[])",
        accounts,
    )
    await paused_reason(client, shown["id"], None)
    viewed = ok(await client.get(f"/organizations/{organization.id}"))
    assert viewed["sending_paused_reason"] is None


async def in_trouble(db: asyncpg.Pool[Any], accounts: list[str]) -> None:
    """Limited now, as the sender records a PEER_FLOOD."""
    await db.execute(
        "UPDATE telegram_accounts SET health_status = 'limited', troubled_at = now()"
        " WHERE id = ANY($1::uuid[])",
        accounts,
    )


async def paused_reason(
    client: httpx.AsyncClient, campaign_id: str, expected: str | None
) -> dict[str, Any]:
    """The campaign's view once its sending_paused_reason is `expected` (the scheduler's sweep
    runs every second; a context not evaluated yet is taken at the next one)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        detail: dict[str, Any] = ok(await client.get(f"/campaign-flows/{campaign_id}"))
        if detail["sending_paused_reason"] == expected:
            return detail
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"sending_paused_reason {detail['sending_paused_reason']!r}")
        await asyncio.sleep(0.2)
