"""The companies-and-pipelines permission matrix (tests/permission_matrix.py `expected_record`)
through HTTP, cell by cell: view, edit and delete of one's own and another member's company and
pipeline, for each role with admin view on and off, and in personal mode. 404 is "may not
see", 403 "may see, may not change"."""

from __future__ import annotations

import httpx
import pytest

from shared.domain.permissions import Decision, RecordAction, Role
from tests.api.conftest import Organization, PersonFactory, set_admin_view
from tests.builders import ok
from tests.permission_matrix import RECORD_ACTIONS, expected_record

KINDS = {
    "company": ("/companies", {"name": "Matrix Co"}, {"domain": "matrix.io"}),
    "pipeline": ("/pipelines", {"name": "Matrix", "stages": [{"name": "Lead"}]},
                 {"name": "Renamed"}),
}  # fmt: skip


async def attempt(
    client: httpx.AsyncClient, kind: str, record_id: str, action: RecordAction
) -> httpx.Response:
    base, _, patch = KINDS[kind]
    path = f"{base}/{record_id}"
    match action:
        case RecordAction.VIEW:
            return await client.get(path)
        case RecordAction.EDIT:
            return await client.patch(path, json=patch)
        case RecordAction.DELETE:
            return await client.delete(path)


def observed(kind: str, response: httpx.Response) -> Decision:
    if response.status_code == 404:
        assert response.json()["code"] == f"{kind}_not_found", response.text
        return Decision.INVISIBLE
    if response.status_code == 403:
        assert response.json()["code"] == "permission_denied", response.text
        return Decision.FORBIDDEN
    assert response.status_code in (200, 204), response.text
    return Decision.ALLOWED


async def check(
    caller: httpx.AsyncClient,
    creator: httpx.AsyncClient,
    cell: tuple[str, Role | None, bool, bool],
) -> None:
    wrong = []
    for kind, (base, body, _) in KINDS.items():
        record = ok(await creator.post(base, json=body), 201)
        for action in RECORD_ACTIONS:  # delete last
            decision, source = expected_record(*cell, action)
            got = observed(kind, await attempt(caller, kind, record["id"], action))
            if got is not decision:
                wrong.append(f"{kind} {action}: expected {decision} ({source}), got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("own", [True, False], ids=["own", "others"])
@pytest.mark.parametrize("admin_view", [True, False], ids=["viewOn", "viewOff"])
@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MEMBER])
async def test_organization_record_matrix(
    organization: Organization, role: Role, admin_view: bool, own: bool
) -> None:
    await set_admin_view(organization, admin_view)
    caller = organization.people()[role.value]
    creator = caller if own else organization.other_member
    await check(
        caller.at(organization.id),
        creator.at(organization.id),
        ("organization", role, admin_view, own),
    )


@pytest.mark.parametrize("own", [True, False], ids=["own", "others"])
async def test_personal_record_matrix(person: PersonFactory, own: bool) -> None:
    caller, stranger = await person("me"), await person("stranger")
    await check(caller.client, (caller if own else stranger).client, ("personal", None, False, own))
