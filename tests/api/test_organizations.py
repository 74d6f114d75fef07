"""Organizations, members and roles, API keys and Telegram accounts, through HTTP."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from telethon.crypto import AuthKey
from telethon.sessions import StringSession

from shared.crypto import SessionCipher
from tests.api.conftest import Organization, PersonFactory, set_admin_view
from tests.builders import ok
from tests.support import TEST_SESSION_KEY


def _session() -> str:
    session = StringSession()
    session.set_dc(2, "127.0.0.1", 443)
    session.auth_key = AuthKey(bytes(range(256)))
    return str(session.save())


SESSION = _session()


async def test_the_creator_owns_a_new_organization(person: PersonFactory) -> None:
    ann = await person("ann")
    created = ok(await ann.client.post("/organizations", json={"name": "Acme"}), 201)
    assert created["role"] == "owner"
    assert created["admin_view_enabled"] is False
    listed = ok(await ann.client.get("/organizations"))
    assert [o["id"] for o in listed] == [created["id"]]
    members = ok(await ann.client.get(f"/organizations/{created['id']}/members"))["items"]
    assert [(m["email"], m["role"]) for m in members] == [(ann.email, "owner")]


async def test_outsiders_see_nothing_and_members_cannot_manage(
    organization: Organization, person: PersonFactory
) -> None:
    outsider = await person("outsider")
    org = organization.id
    hidden = await outsider.client.get(f"/organizations/{org}")
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "organization_not_found"
    # Acting in an organization one does not belong to is refused outright.
    foreign = await outsider.at(org).get("/campaign-flows")
    assert foreign.status_code == 403
    assert foreign.json()["code"] == "not_a_member"

    member = organization.member.client
    assert ok(await member.get(f"/organizations/{org}"))["role"] == "member"
    for response in (
        await member.patch(f"/organizations/{org}", json={"admin_view_enabled": True}),
        await member.post(f"/organizations/{org}/members", json={"email": "x@example.com"}),
        await member.delete(f"/organizations/{org}/members/{organization.other_member.user_id}"),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "permission_denied"


async def test_owner_and_admin_change_admin_view(organization: Organization) -> None:
    await set_admin_view(organization, True)
    admin = organization.admin.client
    changed = ok(
        await admin.patch(
            f"/organizations/{organization.id}",
            json={"admin_view_enabled": False, "name": "Acme Ltd"},
        )
    )
    assert (changed["admin_view_enabled"], changed["name"]) == (False, "Acme Ltd")


async def test_roles_only_an_owner_grants_or_removes_ownership(
    organization: Organization, person: PersonFactory
) -> None:
    org = organization.id
    admin, owner = organization.admin.client, organization.owner.client
    newcomer = await person("newcomer")
    refused = await admin.post(
        f"/organizations/{org}/members", json={"email": newcomer.email, "role": "owner"}
    )
    assert refused.status_code == 403
    added = ok(
        await admin.post(
            f"/organizations/{org}/members", json={"email": newcomer.email, "role": "member"}
        ),
        201,
    )
    assert added["user_id"] == str(newcomer.user_id)
    again = await admin.post(f"/organizations/{org}/members", json={"email": newcomer.email})
    assert again.status_code == 409
    assert again.json()["code"] == "already_a_member"

    member_path = f"/organizations/{org}/members/{newcomer.user_id}"
    assert (await admin.patch(member_path, json={"role": "owner"})).status_code == 403
    assert ok(await admin.patch(member_path, json={"role": "admin"}))["role"] == "admin"
    assert ok(await owner.patch(member_path, json={"role": "owner"}))["role"] == "owner"
    owner_path = f"/organizations/{org}/members/{organization.owner.user_id}"
    assert (await admin.delete(owner_path)).status_code == 403


async def test_an_organization_keeps_its_last_owner(organization: Organization) -> None:
    org = organization.id
    owner = organization.owner
    path = f"/organizations/{org}/members/{owner.user_id}"
    demote = await owner.client.patch(path, json={"role": "admin"})
    leave = await owner.client.delete(path)
    for response in (demote, leave):
        assert response.status_code == 409
        assert response.json()["code"] == "last_owner"
    # A member may leave on its own.
    member = organization.member
    gone = await member.client.delete(f"/organizations/{org}/members/{member.user_id}")
    assert gone.status_code == 204
    assert (await member.client.get(f"/organizations/{org}")).status_code == 404


async def test_member_input_is_validated_field_by_field(organization: Organization) -> None:
    response = await organization.owner.client.post(
        f"/organizations/{organization.id}/members", json={"email": "nope", "role": "king"}
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"email", "role"}


async def test_api_keys_are_shown_once_and_revocable(person: PersonFactory) -> None:
    ann = await person("ann")
    created = ok(await ann.client.post("/api-keys", json={"name": "ci"}), 201)
    assert created["key"].startswith(created["key_prefix"])
    listed = ok(await ann.client.get("/api-keys"))
    assert {k["name"] for k in listed} == {"default", "ci"}
    assert all("key" not in k for k in listed)
    async with httpx.AsyncClient(
        base_url=str(ann.client.base_url), headers={"Authorization": f"Bearer {created['key']}"}
    ) as new:
        assert (await new.get("/campaign-flows")).status_code == 200
        assert (await ann.client.delete(f"/api-keys/{created['id']}")).status_code == 204
        assert (await new.get("/campaign-flows")).status_code == 401
    bob = await person("bob")
    assert (await bob.client.delete(f"/api-keys/{listed[0]['id']}")).status_code == 404


async def test_telegram_accounts_live_in_their_context(
    organization: Organization, person: PersonFactory
) -> None:
    owner, member = organization.owner, organization.member
    shared = ok(
        await member.at(organization.id).post("/telegram-accounts", json={"display_name": "Sales"}),
        201,
    )
    assert shared["health_status"] == "warming"  # a new account starts warming up
    personal = ok(
        await member.client.post("/telegram-accounts", json={"display_name": "Mine"}), 201
    )
    in_org = ok(await owner.at(organization.id).get("/telegram-accounts"))
    assert [a["id"] for a in in_org] == [shared["id"]]
    assert (await owner.client.get(f"/telegram-accounts/{personal['id']}")).status_code == 404
    # The owner manages the organization's accounts; another member may not.
    renamed = await owner.at(organization.id).patch(
        f"/telegram-accounts/{shared['id']}", json={"display_name": "Sales EU"}
    )
    assert ok(renamed)["display_name"] == "Sales EU"
    other = organization.other_member.at(organization.id)
    assert (await other.delete(f"/telegram-accounts/{shared['id']}")).status_code == 403


async def test_a_telethon_account_keeps_its_session_sealed(
    person: PersonFactory, db: asyncpg.Pool[Any]
) -> None:
    ada = await person("ada-telethon@example.com")
    missing = await ada.client.post(
        "/telegram-accounts", json={"display_name": "Real", "session_kind": "telethon"}
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "session_string"
    garbage = await ada.client.post(
        "/telegram-accounts",
        json={"display_name": "Real", "session_kind": "telethon", "session_string": "x"},
    )
    assert garbage.status_code == 422
    assert "x" not in garbage.json()["detail"]
    simulated_with_session = await ada.client.post(
        "/telegram-accounts", json={"display_name": "Sim", "session_string": SESSION}
    )
    assert simulated_with_session.status_code == 422
    created = ok(
        await ada.client.post(
            "/telegram-accounts",
            json={"display_name": "Real", "session_kind": "telethon", "session_string": SESSION},
        ),
        201,
    )
    # Not known to work until the sender has opened it; the session never comes back out.
    assert created["health_status"] == "disconnected"
    assert "session_string" not in created
    stored = await db.fetchval(
        "SELECT session_string FROM telegram_accounts WHERE id = $1", created["id"]
    )
    assert SESSION not in stored
    assert SessionCipher(TEST_SESSION_KEY).open(stored) == SESSION


async def test_recontact_after_days_is_set_kept_and_turned_off(organization: Organization) -> None:
    owner = organization.owner.client
    path = f"/organizations/{organization.id}"
    assert ok(await owner.get(path))["recontact_after_days"] is None
    assert (
        ok(await owner.patch(path, json={"recontact_after_days": 30}))["recontact_after_days"] == 30
    )
    # Changing something else keeps it; the opt-out phrases beside it are untouched.
    kept = ok(await owner.patch(path, json={"opt_out_phrases": ["halt"]}))
    assert (kept["recontact_after_days"], kept["opt_out_phrases"]) == (30, ["halt"])
    bad = await owner.patch(path, json={"recontact_after_days": 0})
    assert bad.status_code == 422, bad.text
    member = await organization.member.client.patch(path, json={"recontact_after_days": 1})
    assert member.status_code == 403, member.text
    off = ok(await owner.patch(path, json={"recontact_after_days": None}))
    assert (off["recontact_after_days"], off["opt_out_phrases"]) == (None, ["halt"])
