"""Pipelines and opportunities through HTTP (issue 19, item 3): pipelines with ordered stages,
the bulk action upsert_opportunities (spec 003's modal) through the live api and scheduler
with per-item results, and stage changes as opportunity.stage_changed events on Kafka."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx
import pytest

from shared.messaging.topics import Topic
from tests.api.conftest import Live, Organization, Person, PersonFactory
from tests.builders import contact, ok
from tests.support import eventually, find_on_topic, topic


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


async def pipeline(client: httpx.AsyncClient, *stages: str, name: str = "Sales") -> dict[str, Any]:
    body = {"name": name, "stages": [{"name": s} for s in stages]}
    return ok(await client.post("/pipelines", json=body), 201)  # type: ignore[no-any-return]


async def finished(client: httpx.AsyncClient, action_id: str) -> dict[str, Any]:
    async def done() -> Any:
        found = ok(await client.get(f"/bulk-actions/{action_id}"))
        return found if found["status"] in ("completed", "cancelled", "failed") else None

    return await eventually(done)  # type: ignore[no-any-return]


async def outcomes(client: httpx.AsyncClient, action_id: str) -> dict[str, tuple[str, str]]:
    page = ok(await client.get(f"/bulk-actions/{action_id}/items", params={"limit": 1000}))
    return {i["contact_id"]: (i["status"], i["code"]) for i in page["items"]}


async def stage_events(live: Live, opportunity_ids: set[str], count: int) -> list[dict[str, Any]]:
    def ours(record: Any) -> bool:
        return json.loads(record.value)["payload"].get("opportunity_id") in opportunity_ids

    async def enough() -> Any:
        found = await find_on_topic(
            live.settings.bootstrap_servers, topic(live.settings, Topic.OPPORTUNITY_EVENTS), ours
        )
        unique = {json.loads(r.value)["message_id"]: json.loads(r.value) for r in found}
        return list(unique.values()) if len(unique) >= count else None

    return await eventually(enough, timeout_s=40)  # type: ignore[no-any-return]


async def test_a_pipeline_keeps_its_stage_ids_across_edits(ann: Person) -> None:
    created = await pipeline(ann.client, "Lead", "Qualified", "Won")
    lead, qualified, won = created["stages"]
    assert [(s["name"], s["position"]) for s in created["stages"]] == [
        ("Lead", 0),
        ("Qualified", 1),
        ("Won", 2),
    ]
    url = f"/pipelines/{created['id']}"
    edited = ok(
        await ann.client.patch(
            url,
            json={"name": "Outbound", "stages": [
                {"id": qualified["id"], "name": "Qualified lead"},
                {"id": lead["id"], "name": "Lead"},
                {"name": "Demo"},
            ]},
        )
    )  # fmt: skip
    assert edited["name"] == "Outbound"
    assert [(s["id"], s["name"]) for s in edited["stages"][:2]] == [
        (qualified["id"], "Qualified lead"),
        (lead["id"], "Lead"),
    ]
    assert edited["stages"][2]["name"] == "Demo"
    assert won["id"] not in {s["id"] for s in edited["stages"]}
    assert ok(await ann.client.get(url)) == edited
    assert [p["id"] for p in ok(await ann.client.get("/pipelines"))["items"]] == [created["id"]]
    assert (await ann.client.delete(url)).status_code == 204
    assert (await ann.client.get(url)).json()["code"] == "pipeline_not_found"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "P", "stages": []}, 422, "validation_error"),
        ({"name": "P"}, 422, "validation_error"),
        ({"name": "", "stages": [{"name": "A"}]}, 422, "validation_error"),
        ({"name": "P", "stages": [{"name": "A"}, {"name": "a"}]}, 422, "duplicate_stage"),
        ({"name": "P", "stages": [{"name": "A", "id": "00000000-0000-0000-0000-000000000001"}]},
         422, "validation_error"),
    ],
)  # fmt: skip
async def test_a_bad_pipeline_is_refused_with_its_code(
    ann: Person, body: Any, status: int, code: str
) -> None:
    answer = await ann.client.post("/pipelines", json=body)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text


async def test_bulk_upsert_opportunities_creates_updates_and_announces_stage_changes(
    ann: Person, live: Live
) -> None:
    sales = await pipeline(ann.client, "Lead", "Demo", "Won")
    lead, demo, won = (s["id"] for s in sales["stages"])
    people = [await contact(ann.client, f"opp{n}lead", first_name=f"Opp{n}") for n in range(3)]
    ids = [p["id"] for p in people]

    async def upsert(action_name: str, contact_ids: list[str], **params: Any) -> dict[str, Any]:
        action = ok(
            await ann.client.post(
                "/bulk-actions",
                json={"name": action_name, "action": "upsert_opportunities",
                      "contact_ids": contact_ids,
                      "params": {"pipeline_id": sales["id"], **params}},
            ),
            201,
        )  # fmt: skip
        return await finished(ann.client, action["id"])

    first = await upsert("New leads", ids[:2], stage_id=lead, value="1500.50",
                         custom_fields={"source": "ads"})  # fmt: skip
    assert (first["success_count"], first["skipped_count"]) == (2, 0)
    assert set((await outcomes(ann.client, first["id"])).values()) == {("succeeded", "created")}
    second = await upsert("Demos", ids, stage_id=demo, status="open", name="Spring deal",
                          custom_fields={"tier": "gold"})  # fmt: skip
    assert await outcomes(ann.client, second["id"]) == {
        ids[0]: ("succeeded", "updated"),
        ids[1]: ("succeeded", "updated"),
        ids[2]: ("succeeded", "created"),
    }
    again = await upsert("Same again", ids[:1], stage_id=demo)
    assert await outcomes(ann.client, again["id"]) == {ids[0]: ("skipped", "unchanged")}
    listed = ok(await ann.client.get(f"/pipelines/{sales['id']}/opportunities"))["items"]
    by_contact = {o["contact_id"]: o for o in listed}
    assert {o["stage_id"] for o in listed} == {demo}
    assert by_contact[ids[0]]["name"] == "Spring deal"
    assert by_contact[ids[0]]["value"] == "1500.50"
    assert by_contact[ids[0]]["custom_fields"] == {"source": "ads", "tier": "gold"}
    assert by_contact[ids[2]]["value"] is None
    # One at a time: moving an opportunity is an event too.
    moved = ok(
        await ann.client.patch(
            f"/opportunities/{by_contact[ids[2]]['id']}", json={"stage_id": won, "status": "won"}
        )
    )
    assert (moved["stage_name"], moved["status"]) == ("Won", "won")
    opportunities = {o["id"] for o in listed}
    events = await stage_events(live, opportunities, 6)
    moves = Counter(
        (e["payload"]["contact_id"], e["payload"]["previous_stage_id"], e["payload"]["stage_id"],
         e["payload"]["source"])
        for e in events
    )  # fmt: skip
    assert moves == Counter(
        [
            (ids[0], None, lead, "bulk_action"),
            (ids[1], None, lead, "bulk_action"),
            (ids[0], lead, demo, "bulk_action"),
            (ids[1], lead, demo, "bulk_action"),
            (ids[2], None, demo, "bulk_action"),
            (ids[2], demo, won, "api"),
        ]
    )
    assert {e["type"] for e in events} == {"opportunity.stage_changed"}
    # The unchanged one emitted nothing, and a stage removal is refused while in use.
    in_use = await ann.client.patch(
        f"/pipelines/{sales['id']}", json={"stages": [{"id": lead, "name": "Lead"}]}
    )
    assert (in_use.status_code, in_use.json()["code"]) == (409, "stage_in_use")


async def test_an_upsert_needs_a_name_a_stage_of_the_pipeline_and_the_callers_pipeline(
    ann: Person, person: PersonFactory
) -> None:
    sales = await pipeline(ann.client, "Lead")
    other = await pipeline(ann.client, "Elsewhere", name="Other")
    someone = await contact(ann.client, "upsertlead")
    params = {"pipeline_id": sales["id"], "stage_id": sales["stages"][0]["id"]}
    body: dict[str, Any] = {
        "name": "Opps",
        "action": "upsert_opportunities",
        "contact_ids": [someone["id"]],
        "params": params,
    }
    nameless = await ann.client.post("/bulk-actions", json={**body, "name": " "})
    assert (nameless.status_code, nameless.json()["errors"][0]["field"]) == (422, "name")
    wrong_stage = {**params, "stage_id": other["stages"][0]["id"]}
    answer = await ann.client.post("/bulk-actions", json={**body, "params": wrong_stage})
    assert (answer.status_code, answer.json()["code"]) == (404, "stage_not_found")
    bad_status = {**params, "status": "maybe"}
    answer = await ann.client.post("/bulk-actions", json={**body, "params": bad_status})
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (422, "params.status")
    bad_value = {**params, "value": -5}
    answer = await ann.client.post("/bulk-actions", json={**body, "params": bad_value})
    assert (answer.status_code, answer.json()["errors"][0]["field"]) == (422, "params.value")
    bob = await person("bob")
    answer = await bob.client.post("/bulk-actions", json=body)
    assert (answer.status_code, answer.json()["code"]) == (404, "pipeline_not_found")


async def test_members_share_pipelines_and_only_owners_and_admins_delete_others(
    organization: Organization,
) -> None:
    org = organization.id
    member, other = organization.member.at(org), organization.other_member.at(org)
    theirs = await pipeline(other, "Lead", name="Theirs")
    assert [p["id"] for p in ok(await member.get("/pipelines"))["items"]] == [theirs["id"]]
    ok(await member.patch(f"/pipelines/{theirs['id']}", json={"name": "Renamed"}))
    refused = await member.delete(f"/pipelines/{theirs['id']}")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    owner = organization.owner.at(org)
    assert (await owner.delete(f"/pipelines/{theirs['id']}")).status_code == 204


def staged_flow(pipeline_id: str, stage_id: str, condition_stage: str | None = None) -> Any:
    """A flow that moves the opportunity to a stage and then branches on one."""
    return {
        "start": "move",
        "nodes": [
            {
                "id": "move",
                "type": "set_opportunity_stage",
                "pipeline_id": pipeline_id,
                "stage_id": stage_id,
            },
            {
                "id": "there?",
                "type": "condition",
                "condition": {
                    "kind": "opportunity_stage",
                    "pipeline_id": pipeline_id,
                    "stage_id": condition_stage or stage_id,
                },
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "move", "to": "there?"},
            {"from": "there?", "to": "end", "when": "true"},
            {"from": "there?", "to": "end", "when": "false"},
        ],
    }


async def test_a_flow_names_only_pipelines_and_stages_its_owner_may_use(
    ann: Person, person: PersonFactory
) -> None:
    """Issue 19, item 3: a flow's set_opportunity_stage node and opportunity_stage condition are
    checked when the flow is saved: another context's (or no) pipeline is 422
    unknown_pipeline, a stage that is not the pipeline's 422 unknown_stage, on the node."""
    sales = await pipeline(ann.client, "Lead", "Won")
    other = await pipeline(ann.client, "Elsewhere", name="Other")
    lead, won = (s["id"] for s in sales["stages"])
    saved = ok(
        await ann.client.post(
            "/campaign-flows", json={"name": "Stages", "flow": staged_flow(sales["id"], won)}
        ),
        201,
    )
    assert saved["flow"]["nodes"][0]["stage_id"] == won
    wrong_stage = await ann.client.post(
        "/campaign-flows",
        json={"name": "x", "flow": staged_flow(sales["id"], lead, other["stages"][0]["id"])},
    )
    assert wrong_stage.status_code == 422, wrong_stage.text
    assert [(e["code"], e["field"], e["node_id"]) for e in wrong_stage.json()["errors"]] == [
        ("unknown_stage", "flow.nodes[1].condition.stage_id", "there?")
    ]
    bob = await person("bob")
    theirs = await bob.client.post(
        "/campaign-flows", json={"name": "x", "flow": staged_flow(sales["id"], won)}
    )
    assert theirs.status_code == 422, theirs.text
    assert sorted((e["code"], e["field"]) for e in theirs.json()["errors"]) == [
        ("unknown_pipeline", "flow.nodes[0].pipeline_id"),
        ("unknown_pipeline", "flow.nodes[1].condition.pipeline_id"),
    ]
    patched = await ann.client.patch(
        f"/campaign-flows/{saved['id']}", json={"flow": staged_flow(other["id"], won)}
    )
    assert patched.status_code == 422, patched.text
    assert {e["code"] for e in patched.json()["errors"]} == {"unknown_stage"}
