"""The whole permission matrix through HTTP against the running services: every action, for
one's own campaign and another member's, for each role, with admin_view_enabled on and off, and
in personal mode. Expected decisions (with the spec line behind each) come from the same table
as the domain tests; here they must come out of the API as 404 (may not view), 403 (may view,
may not change) or an answer past the permission check (2xx, or 409 for a status conflict).

A command published straight to Kafka by another system is checked the same way."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from shared.domain.permissions import CONTACT_REFUSALS, Action, ContactAction, Decision, Role
from shared.messaging.contracts import CampaignCommand
from shared.messaging.envelope import Actor, new_envelope
from shared.messaging.topics import Topic
from tests.api.conftest import Live, Organization, PersonFactory, set_admin_view
from tests.builders import campaign, contact, ok
from tests.permission_matrix import CONTACT_CELLS, expected
from tests.support import find_on_topic, produce, topic

# Destructive actions last, so each call still meets a campaign it can act on.
ORDER = [
    Action.VIEW,
    Action.EDIT,
    Action.LAUNCH,
    Action.PAUSE,
    Action.STOP,
    Action.ENABLE,
    Action.DISABLE,
    Action.DUPLICATE,
    Action.ADD_CONTACTS,
    Action.REMOVE_CONTACTS,
    Action.DELETE,
    Action.RESTORE,
]


async def attempt(client: httpx.AsyncClient, campaign_id: str, action: Action) -> httpx.Response:
    path = f"/campaign-flows/{campaign_id}"
    selection = {"contact_ids": [str(uuid.uuid4())]}
    match action:
        case Action.VIEW:
            return await client.get(path)
        case Action.EDIT:
            return await client.patch(path, json={"description": "edited"})
        case Action.DELETE:
            return await client.delete(path)
        case Action.ADD_CONTACTS:
            return await client.post(f"{path}/contacts", json=selection)
        case Action.REMOVE_CONTACTS:
            return await client.request("DELETE", f"{path}/contacts", json=selection)
        case _:
            return await client.post(f"{path}/{action.value}")


def observed(response: httpx.Response) -> Decision:
    if response.status_code == 404:
        assert response.json()["code"] == "campaign_not_found", response.text
        return Decision.INVISIBLE
    if response.status_code == 403:
        assert response.json()["code"] == "permission_denied", response.text
        return Decision.FORBIDDEN
    assert response.status_code in (200, 201, 409), response.text
    return Decision.ALLOWED


async def check_all_actions(
    client: httpx.AsyncClient, campaign_id: str, cell: tuple[str, Role | None, bool, bool]
) -> None:
    wrong = []
    for action in ORDER:
        decision, source = expected(*cell, action)
        got = observed(await attempt(client, campaign_id, action))
        if got is not decision:
            wrong.append(f"{action.value}: expected {decision.value} ({source}), got {got.value}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("own", [True, False], ids=["own", "others"])
@pytest.mark.parametrize("admin_view", [True, False], ids=["viewOn", "viewOff"])
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER])
async def test_organization_matrix(
    organization: Organization, role: Role, admin_view: bool, own: bool
) -> None:
    await set_admin_view(organization, admin_view)
    caller = organization.people()[role.value]
    creator = caller if own else organization.other_member
    target = await campaign(creator.at(organization.id), "Matrix")
    await check_all_actions(
        caller.at(organization.id), target["id"], ("organization", role, admin_view, own)
    )


@pytest.mark.parametrize("own", [True, False], ids=["own", "others"])
async def test_personal_matrix(person: PersonFactory, own: bool) -> None:
    caller, stranger = await person("me"), await person("stranger")
    target = await campaign((caller if own else stranger).client, "Personal")
    await check_all_actions(caller.client, target["id"], ("personal", None, False, own))


async def test_personal_and_organization_campaigns_never_mix(organization: Organization) -> None:
    owner = organization.owner
    await set_admin_view(organization, True)
    personal = await campaign(owner.client, "Personal")
    in_org = await campaign(owner.at(organization.id), "Org")
    assert (
        await owner.at(organization.id).get(f"/campaign-flows/{personal['id']}")
    ).status_code == 404
    assert (await owner.client.get(f"/campaign-flows/{in_org['id']}")).status_code == 404
    assert [c["id"] for c in ok(await owner.client.get("/campaign-flows"))["items"]] == [
        personal["id"]
    ]


async def outcome_of(live: Live, correlation_id: uuid.UUID) -> dict[str, Any]:
    def matches(record: Any) -> bool:
        return bool(json.loads(record.value)["correlation_id"] == str(correlation_id))

    records = await find_on_topic(
        live.settings.bootstrap_servers, topic(live.settings, Topic.CAMPAIGN_EVENTS), matches
    )
    [record] = records
    return json.loads(record.value)  # type: ignore[no-any-return]


async def test_kafka_commands_carry_the_actors_permissions(
    live: Live, organization: Organization
) -> None:
    await set_admin_view(organization, True)
    target = await campaign(organization.other_member.at(organization.id), "Kafka")
    cases = [
        # actor, command -> the outcome event and its code
        (organization.admin, "campaign.pause", "campaign.command_rejected", "permission_denied"),
        (
            organization.member,
            "campaign.disable",
            "campaign.command_rejected",
            "campaign_not_found",
        ),
        (organization.owner, "campaign.disable", "campaign.status_changed", None),
    ]
    sent = []
    for who, command, _, _ in cases:
        envelope = new_envelope(
            type=command,
            payload=CampaignCommand(campaign_id=target["id"]),
            occurred_at=datetime.now(UTC),
            actor=Actor(user_id=who.user_id, organization_id=uuid.UUID(organization.id)),
            correlation_id=uuid.uuid4(),
        )
        await produce(
            live.settings.bootstrap_servers,
            topic(live.settings, Topic.CAMPAIGN_COMMANDS),
            envelope.to_bytes(),
            target["id"].encode(),
        )
        sent.append(envelope.correlation_id)
    for correlation_id, (_, _, event_type, code) in zip(sent, cases, strict=True):
        event = await outcome_of(live, correlation_id)
        assert event["type"] == event_type
        assert event["payload"].get("code") == code
    assert (
        ok(await organization.owner.at(organization.id).get(f"/campaign-flows/{target['id']}"))[
            "enabled"
        ]
        is False
    )


# The contacts' destructive actions (issue 15, item 5) as the API offers them: editing the
# do-not-contact list, deleting a contact, and the bulk delete and export actions over an
# explicit selection (a selection by filter is limited instead: tests/api/test_bulk_actions.py).
CONTACT_CALLS: list[tuple[str, ContactAction]] = [
    ("do_not_contact", ContactAction.EDIT_DO_NOT_CONTACT),
    ("delete", ContactAction.DELETE_CONTACTS),
    ("bulk_delete", ContactAction.DELETE_CONTACTS),
    ("bulk_export", ContactAction.EXPORT_CONTACTS),
    ("merge", ContactAction.MERGE_CONTACTS),
    ("merge_duplicates", ContactAction.MERGE_CONTACTS),
]


async def attempt_on_contacts(
    client: httpx.AsyncClient, call: str, contact_id: str, second_id: str | None = None
) -> httpx.Response:
    match call:
        case "merge":
            pair = {"master_id": contact_id, "other_id": second_id, "confirm": True}
            return await client.post("/contacts/merge", json=pair)
        case "merge_duplicates":
            pairs = [{"master_id": contact_id, "other_id": second_id}]
            return await client.post(
                "/contacts/merge-duplicates", json={"pairs": pairs, "confirm": True}
            )
        case "do_not_contact":
            return await client.post(
                "/do-not-contact", json={"kind": "contact", "value": contact_id}
            )
        case "delete":
            return await client.delete(f"/contacts/{contact_id}")
        case _:
            action = "delete_contacts" if call == "bulk_delete" else "export_contacts"
            body = {"name": call, "action": action, "contact_ids": [contact_id]}
            return await client.post("/bulk-actions", json=body)


def observed_on_contacts(response: httpx.Response, action: ContactAction) -> Decision:
    if response.status_code == 403:
        assert response.json()["code"] == CONTACT_REFUSALS[action], response.text
        return Decision.FORBIDDEN
    assert response.status_code in (200, 201, 202, 204), response.text
    return Decision.ALLOWED


# Personal mode has nobody else's contacts to act on: a stranger's are not even visible.
CONTACT_CALLERS = [(role, own) for role in (Role.OWNER, Role.ADMIN, Role.MEMBER)
                   for own in (True, False)] + [(None, True)]  # fmt: skip


@pytest.mark.parametrize(("role", "own"), CONTACT_CALLERS, ids=lambda v: str(v))
async def test_contact_cells(
    organization: Organization, person: PersonFactory, role: Role | None, own: bool
) -> None:
    if role is None:
        caller = creator = (await person("solo")).client
    else:
        caller = organization.people()[role.value].at(organization.id)
        creator = caller if own else organization.other_member.at(organization.id)
    wrong = []
    for call, action in CONTACT_CALLS:
        target = await contact(creator, f"cell_{call[:6]}_{uuid.uuid4().hex[:8]}")
        mode = "personal" if role is None else "organization"
        decision, source = CONTACT_CELLS[(mode, role, own, action)]
        # A merge's pair are both the creator's: "own" is both the caller's, else across owners.
        second = await contact(creator, f"cell_two_{uuid.uuid4().hex[:8]}")
        response = await attempt_on_contacts(caller, call, target["id"], second["id"])
        got = observed_on_contacts(response, action)
        if got is not decision:
            wrong.append(f"{call}: expected {decision.value} ({source}), got {got.value}")
    assert not wrong, "\n".join(wrong)
