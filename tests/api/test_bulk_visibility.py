"""Who sees a member's bulk actions, exports and bulk operations: the campaigns' rule (spec 001,
view permissions). They name the member's campaigns and contacts, so an owner or admin sees them
exactly when it sees the member's campaigns, that is while the organization's admin view is on;
another member never does. Every read (list, get, items, statistics, download) and every change
answers the same way: 404 for what the caller may not see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import Organization, set_admin_view
from tests.builders import campaign, contact, ok
from tests.support import eventually


@dataclass(frozen=True)
class MembersWork:
    campaign_id: str
    action_id: str  # add_to_campaign: its params name the member's campaign
    export_id: str
    operation_id: str  # disable: its items name the member's campaign


async def finished(client: httpx.AsyncClient, action_id: str) -> None:
    async def done() -> bool:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found["status"] == "completed"  # type: ignore[no-any-return]

    await eventually(done)


async def members_work(member: httpx.AsyncClient) -> MembersWork:
    hidden = await campaign(member, "Member's own")
    contacts = [(await contact(member, f"vis{i}member"))["id"] for i in range(2)]
    added = ok(
        await member.post(
            "/bulk-actions",
            json={
                "name": "Into my campaign",
                "action": "add_to_campaign",
                "params": {"campaign_id": hidden["id"]},
                "contact_ids": contacts,
            },
        ),
        201,
    )
    export = ok(
        await member.post(
            "/bulk-actions",
            json={"name": "My list", "action": "export_contacts", "contact_ids": contacts},
        ),
        201,
    )
    await finished(member, added["id"])
    await finished(member, export["id"])
    operation = ok(
        await member.post(
            "/campaign-flows/bulk",
            json={"action": "disable", "campaign_ids": [hidden["id"]], "wait": 30},
        )
    )
    assert operation["status"] == "completed", operation
    return MembersWork(hidden["id"], added["id"], export["id"], operation["id"])


async def what_it_sees(client: httpx.AsyncClient, work: MembersWork) -> dict[str, Any]:
    """Each endpoint's answer about the member's work: a status code, or for a list whether
    the member's work is in it."""
    action, export, operation = work.action_id, work.export_id, work.operation_id
    gets = {
        "campaign": f"/campaign-flows/{work.campaign_id}",
        "bulk action": f"/bulk-actions/{action}",
        "bulk action items": f"/bulk-actions/{action}/items",
        "bulk action statistics": f"/bulk-actions/{action}/statistics",
        "export action": f"/bulk-actions/{export}",
        "export items": f"/bulk-actions/{export}/items",
        "export download": f"/exports/{export}",
        "bulk operation": f"/bulk-operations/{operation}",
        "bulk operation items": f"/bulk-operations/{operation}/items",
    }
    seen: dict[str, Any] = {
        name: (await client.get(path)).status_code for name, path in gets.items()
    }
    # A completed action cannot be paused: 409 if the caller may see it, 404 if not.
    seen["bulk action pause"] = (await client.post(f"/bulk-actions/{action}/pause")).status_code
    listed = {a["id"] for a in ok(await client.get("/bulk-actions"))["items"]}
    seen["bulk action list"] = {action, export} <= listed
    assert not {action, export} & listed or seen["bulk action list"]  # both or neither
    operations = ok(await client.get("/bulk-operations", params={"view_mode": "all"}))["items"]
    seen["bulk operation list"] = operation in {o["id"] for o in operations}
    return seen


VISIBLE = {
    "campaign": 200,
    "bulk action": 200,
    "bulk action items": 200,
    "bulk action statistics": 200,
    "export action": 200,
    "export items": 200,
    "export download": 200,
    "bulk operation": 200,
    "bulk operation items": 200,
    "bulk action pause": 409,
    "bulk action list": True,
    "bulk operation list": True,
}
INVISIBLE = {name: (False if isinstance(seen, bool) else 404) for name, seen in VISIBLE.items()}


@pytest.mark.parametrize("admin_view", [False, True], ids=["admin view off", "admin view on"])
async def test_a_members_bulk_work_is_seen_by_whoever_sees_their_campaigns(
    organization: Organization, admin_view: bool
) -> None:
    org = organization.id
    await set_admin_view(organization, admin_view)
    work = await members_work(organization.member.at(org))
    expected = {
        "member": VISIBLE,
        "owner": VISIBLE if admin_view else INVISIBLE,
        "admin": VISIBLE if admin_view else INVISIBLE,
        "other member": INVISIBLE,
    }
    viewers = {
        "member": organization.member,
        "owner": organization.owner,
        "admin": organization.admin,
        "other member": organization.other_member,
    }
    observed = {label: await what_it_sees(p.at(org), work) for label, p in viewers.items()}
    wrong = {
        (label, name): {"got": seen, "expected": expected[label][name]}
        for label, answers in observed.items()
        for name, seen in answers.items()
        if seen != expected[label][name]
    }
    assert wrong == {}
    # Asking for one member's work by name changes nothing.
    by_user = ok(
        await organization.owner.at(org).get(
            "/bulk-actions", params={"user": str(organization.member.user_id)}
        )
    )
    assert {a["id"] for a in by_user["items"]} == (
        {work.action_id, work.export_id} if admin_view else set()
    )
