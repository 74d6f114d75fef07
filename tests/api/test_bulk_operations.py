"""Bulk operations over campaigns through HTTP (spec 000): each operation, its skip rules, the
permission rules per campaign, "select all" by filter, results, progress and the rate limit."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.api.conftest import Organization, Person, PersonFactory, set_admin_view
from tests.builders import campaign, command, launchable, ok
from tests.support import eventually


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def bulk(client: httpx.AsyncClient, action: str, ids: list[str], **extra: Any) -> Any:
    """The operation's final result (wait up to 30 s)."""
    body = {"action": action, "campaign_ids": ids, "wait": 30, **extra}
    return ok(await client.post("/campaign-flows/bulk", json=body))


def outcomes(result: dict[str, Any], names: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Skipped and failed campaigns by name: (result, code)."""
    return {names[e["campaign_id"]]: (e["result"], e["code"]) for e in result["errors"]}


async def active(client: httpx.AsyncClient, name: str, contacts: int = 2) -> dict[str, Any]:
    ready = await launchable(client, name, contacts=contacts)
    return ok(await command(client, ready["id"], "launch"))  # type: ignore[no-any-return]


async def statuses(db: asyncpg.Pool[Any], ids: list[str]) -> dict[str, tuple[str, bool, bool]]:
    rows = await db.fetch(
        "SELECT id::text, status, enabled, deleted_at IS NOT NULL AS deleted FROM campaigns"
        " WHERE id = ANY($1::uuid[])",
        ids,
    )
    return {r["id"]: (r["status"], r["enabled"], r["deleted"]) for r in rows}


async def test_stop_cancels_active_and_paused_campaigns_and_skips_the_rest(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    running = await active(ann.client, "Running", contacts=2)
    paused = await active(ann.client, "Paused", contacts=3)
    ok(await command(ann.client, paused["id"], "pause"))
    draft = await campaign(ann.client, "Draft")
    names = {running["id"]: "running", paused["id"]: "paused", draft["id"]: "draft"}
    result = await bulk(ann.client, "stop", list(names))
    assert (result["status"], result["total"], result["processed"]) == ("completed", 3, 3)
    assert (result["success_count"], result["skipped_count"], result["error_count"]) == (2, 1, 0)
    assert result["cancelled_executions"] == 5
    assert outcomes(result, names) == {"draft": ("skipped", "invalid_status")}
    assert "not draft" in result["errors"][0]["message"]
    now = await statuses(db, list(names))
    assert now[running["id"]][0] == now[paused["id"]][0] == "cancelled"
    assert now[draft["id"]][0] == "draft"
    reasons = await db.fetch(
        "SELECT DISTINCT status, error_message FROM executions WHERE campaign_id = ANY($1::uuid[])",
        [running["id"], paused["id"]],
    )
    assert [(r["status"], r["error_message"]) for r in reasons] == [
        ("cancelled", "Campaign stopped by user")
    ]


async def test_launch_applies_to_drafts_and_paused_ones_that_meet_the_requirements(
    ann: Person, db: asyncpg.Pool[Any]
) -> None:
    ready = await launchable(ann.client, "Ready", contacts=1)
    paused = await active(ann.client, "Resumable", contacts=2)
    ok(await command(ann.client, paused["id"], "pause"))
    running = await active(ann.client, "Already running", contacts=1)
    empty = await campaign(ann.client, "Empty")
    names = {ready["id"]: "ready", paused["id"]: "paused", running["id"]: "running",
             empty["id"]: "empty"}  # fmt: skip
    result = await bulk(ann.client, "launch", list(names))
    assert (result["success_count"], result["skipped_count"], result["error_count"]) == (2, 1, 1)
    assert result["cancelled_executions"] == 0
    assert outcomes(result, names) == {
        "running": ("skipped", "invalid_status"),
        "empty": ("failed", "launch_requirements_unmet"),
    }
    empty_error = next(e for e in result["errors"] if e["campaign_id"] == empty["id"])
    assert "no Telegram account" in empty_error["message"]
    now = await statuses(db, list(names))
    assert now[ready["id"]][0] == now[paused["id"]][0] == "active"
    resumed = await db.fetch(
        "SELECT DISTINCT status FROM executions WHERE campaign_id = $1", paused["id"]
    )
    assert [r["status"] for r in resumed] == ["pending"]


async def test_enable_and_disable_work_in_any_status(ann: Person, db: asyncpg.Pool[Any]) -> None:
    running = await active(ann.client, "On", contacts=2)
    draft = await campaign(ann.client, "Off")
    ok(await command(ann.client, draft["id"], "disable"))
    names = {running["id"]: "running", draft["id"]: "draft"}
    disabled = await bulk(ann.client, "disable", list(names))
    assert (disabled["success_count"], disabled["skipped_count"]) == (1, 1)
    assert disabled["cancelled_executions"] == 2
    assert outcomes(disabled, names) == {"draft": ("skipped", "already_disabled")}
    now = await statuses(db, list(names))
    assert now[running["id"]] == ("active", False, False)  # the status stays; it is disabled
    enabled = await bulk(ann.client, "enable", list(names))
    assert (enabled["success_count"], enabled["skipped_count"], enabled["error_count"]) == (2, 0, 0)
    now = await statuses(db, list(names))
    assert (now[running["id"]][1], now[draft["id"]][1]) == (True, True)
    again = await bulk(ann.client, "enable", [draft["id"]])
    assert outcomes(again, names) == {"draft": ("skipped", "already_enabled")}


async def test_delete_skips_active_campaigns(ann: Person, db: asyncpg.Pool[Any]) -> None:
    running = await active(ann.client, "Live", contacts=1)
    draft = await campaign(ann.client, "Old draft")
    stopped = await active(ann.client, "Stopped", contacts=1)
    ok(await command(ann.client, stopped["id"], "stop"))
    names = {running["id"]: "running", draft["id"]: "draft", stopped["id"]: "stopped"}
    result = await bulk(ann.client, "delete", list(names))
    assert (result["success_count"], result["skipped_count"]) == (2, 1)
    assert outcomes(result, names) == {"running": ("skipped", "campaign_active")}
    now = await statuses(db, list(names))
    assert (now[draft["id"]][2], now[stopped["id"]][2], now[running["id"]][2]) == (
        True,
        True,
        False,
    )
    listed = ok(await ann.client.get("/campaign-flows"))["items"]
    assert [c["id"] for c in listed] == [running["id"]]
    # A deleted campaign is no longer visible: deleting it again is an error, not a success.
    repeated = await bulk(ann.client, "delete", [draft["id"]])
    assert outcomes(repeated, names) == {"draft": ("failed", "campaign_not_found")}


async def test_permissions_apply_per_campaign(organization: Organization) -> None:
    org = organization.id
    owner, member = organization.owner.at(org), organization.member.at(org)
    await set_admin_view(organization, True)
    members_running = await active(member, "Members", contacts=1)
    members_draft = await launchable(member, "Members draft", contacts=1)
    owners_running = await active(owner, "Owners", contacts=1)
    missing = str(uuid.uuid4())
    names = {members_running["id"]: "member running", members_draft["id"]: "member draft",
             owners_running["id"]: "owner running", missing: "missing"}  # fmt: skip
    # An owner may stop other members' campaigns (spec 000) but not launch them.
    stopped = await bulk(owner, "stop", [members_running["id"], owners_running["id"], missing])
    assert (stopped["success_count"], stopped["error_count"]) == (2, 1)
    assert outcomes(stopped, names) == {"missing": ("failed", "campaign_not_found")}
    launched = await bulk(owner, "launch", [members_draft["id"]])
    assert outcomes(launched, names) == {"member draft": ("failed", "permission_denied")}
    # A member cannot even see the owner's campaign: not found, never a success.
    owners_draft = await campaign(owner, "Owners draft")
    names[owners_draft["id"]] = "owner draft"
    mixed = await bulk(member, "delete", [owners_draft["id"], members_draft["id"]])
    assert (mixed["success_count"], mixed["error_count"]) == (1, 1)
    assert outcomes(mixed, names) == {"owner draft": ("failed", "campaign_not_found")}
    # With admin view off, the owner no longer sees members' campaigns at all.
    await set_admin_view(organization, False)
    another = await launchable(member, "Hidden", contacts=1)
    names[another["id"]] = "hidden"
    hidden = await bulk(owner, "disable", [another["id"]])
    assert outcomes(hidden, names) == {"hidden": ("failed", "campaign_not_found")}


async def test_select_all_means_every_visible_campaign_that_matches(
    organization: Organization, db: asyncpg.Pool[Any]
) -> None:
    org = organization.id
    owner, member = organization.owner.at(org), organization.member.at(org)
    await set_admin_view(organization, True)
    tagged_own = await campaign(owner, "Spring A", tags=["spring"])
    await campaign(owner, "Autumn", tags=["autumn"])
    tagged_members = await campaign(member, "Spring B", tags=["spring"])
    spring = {"tag": "spring", "status": ["draft"]}
    mine = ok(
        await owner.post(
            "/campaign-flows/bulk", json={"action": "disable", "filter": spring, "wait": 30}
        )
    )
    assert (mine["total"], mine["success_count"]) == (1, 1)
    everyone = ok(
        await owner.post(
            "/campaign-flows/bulk",
            json={"action": "enable", "filter": {**spring, "view_mode": "all"}, "wait": 30},
        )
    )
    # The owner's own one was disabled and is enabled again; the member's was already enabled.
    assert (everyone["total"], everyone["success_count"], everyone["skipped_count"]) == (2, 1, 1)
    # A member asking for "all" gets their own view: only their campaign.
    members = ok(
        await member.post(
            "/campaign-flows/bulk",
            json={"action": "delete", "filter": {**spring, "view_mode": "all"}, "wait": 30},
        )
    )
    assert (members["total"], members["success_count"]) == (1, 1)
    now = await statuses(db, [tagged_own["id"], tagged_members["id"]])
    assert (now[tagged_members["id"]][2], now[tagged_own["id"]][2]) == (True, False)


async def test_progress_is_visible_and_the_operation_is_recorded_with_its_actor(
    ann: Person, person: PersonFactory
) -> None:
    drafts = [(await campaign(ann.client, f"Batch {i}"))["id"] for i in range(3)]
    accepted = await ann.client.post(
        "/campaign-flows/bulk", json={"action": "disable", "campaign_ids": drafts}
    )
    assert accepted.status_code in (200, 202), accepted.text
    operation = accepted.json()
    assert accepted.headers["location"] == f"/bulk-operations/{operation['id']}"
    assert operation["status"] in ("queued", "processing", "completed")

    async def finished() -> Any:
        found = ok(await ann.client.get(f"/bulk-operations/{operation['id']}"))
        return found if found["status"] == "completed" else None

    done = await finished() or await eventually(finished)
    assert (done["total"], done["processed"], done["success_count"]) == (3, 3, 3)
    assert (done["requested_by_email"], done["origin"], done["action"]) == (
        ann.email,
        "http",
        "disable",
    )
    assert done["selection"] == {"campaign_ids": drafts}
    items_url = f"/bulk-operations/{operation['id']}/items"
    first = ok(await ann.client.get(items_url, params={"limit": 2}))
    rest = ok(await ann.client.get(items_url, params={"cursor": first["next_cursor"]}))
    items = first["items"] + rest["items"]
    assert sorted(i["campaign_id"] for i in items) == sorted(drafts)
    assert {(i["result"], i["code"]) for i in items} == {("succeeded", "disabled")}
    assert rest["next_cursor"] is None
    listed = ok(await ann.client.get("/bulk-operations"))["items"]
    assert [o["id"] for o in listed] == [operation["id"]]
    stranger = await person("stranger")
    assert (await stranger.client.get(f"/bulk-operations/{operation['id']}")).status_code == 404


async def test_a_user_over_the_rate_limit_gets_429_with_retry_after(ann: Person) -> None:
    draft = await campaign(ann.client, "Limited")
    answers = [
        (
            await ann.client.post(
                "/campaign-flows/bulk", json={"action": "enable", "campaign_ids": [draft["id"]]}
            )
        )
        for _ in range(11)
    ]
    assert all(a.status_code in (200, 202) for a in answers[:10]), answers[0].text
    limited = answers[10]
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "stop"}, ""),
        ({"action": "stop", "campaign_ids": [str(uuid.uuid4())], "filter": {}}, ""),
        ({"action": "stop", "campaign_ids": [str(uuid.uuid4())], "reset_completed": True}, ""),
        ({"action": "stop", "campaign_ids": [str(uuid.uuid4())], "wait": 61}, "wait"),
        ({"action": "archive", "campaign_ids": [str(uuid.uuid4())]}, "action"),
        ({"action": "stop", "filter": {"colour": "red"}}, "filter.colour"),
    ],
)
async def test_a_bad_request_is_a_specific_422(ann: Person, body: Any, field: str) -> None:
    response = await ann.client.post("/campaign-flows/bulk", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
