"""/attachments through HTTP: a photo or document uploaded once, refused with a specific code
when too large, of a type not allowed, or not what its type says; named by a send step only
when the caller's organization uploaded it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Organization, Person, PersonFactory
from tests.builders import END, campaign, edge, flow, ok

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LIMIT = 64 * 1024  # tests/api/conftest.py's max_attachment_bytes


@pytest.fixture
async def ada(person: PersonFactory) -> Person:
    return await person("ada")


async def upload(someone: Person, data: bytes, content_type: str, **params: str) -> Any:
    return await someone.client.post(
        "/attachments", content=data, headers={"Content-Type": content_type}, params=params
    )


async def test_a_photo_is_stored_once_and_read_back(ada: Person) -> None:
    stored = ok(await upload(ada, PNG, "image/png", filename="../../etc/logo.png"), 201)
    assert {k: stored[k] for k in ("kind", "content_type", "filename", "size_bytes")} == {
        "kind": "photo",
        "content_type": "image/png",
        "filename": "logo.png",
        "size_bytes": len(PNG),
    }
    assert ok(await ada.client.get(f"/attachments/{stored['id']}")) == stored
    document = ok(await upload(ada, b"%PDF-1.4 hello", "application/pdf"), 201)
    assert (document["kind"], document["filename"]) == ("document", "document")


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"", "image/png", 422, "attachment_empty"),
        (b"not a png at all", "image/png", 422, "attachment_content_mismatch"),
        (b"MZ\x90\x00", "application/x-msdownload", 415, "attachment_type_not_allowed"),
        (b"x" * (LIMIT + 1), "application/pdf", 413, "attachment_too_large"),
        (b"x" * (LIMIT + 2), "application/pdf", 413, "payload_too_large"),
    ],
)
async def test_bad_uploads_have_specific_codes(
    ada: Person, data: bytes, content_type: str, status: int, code: str
) -> None:
    response = await upload(ada, data, content_type)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code


def photo_flow(attachment_id: str, text: str = "Hi {first_name|there}") -> dict[str, Any]:
    send = {"id": "hello", "type": "send_message", "text": text, "attachment_id": attachment_id}
    return flow([send, END], [edge("hello", "end")])


async def test_a_send_step_names_only_its_organizations_attachments(
    organization: Organization, ada: Person
) -> None:
    owner = organization.owner.at(organization.id)
    member = organization.member.at(organization.id)
    theirs = ok(await upload(ada, PNG, "image/png"), 201)["id"]
    ours = (
        await owner.post("/attachments", content=PNG, headers={"Content-Type": "image/png"})
    ).json()["id"]
    # A member names the photo the owner uploaded to the organization.
    saved = await campaign(member, flow=photo_flow(ours))
    assert saved["flow"]["nodes"][0]["attachment_id"] == ours
    # Nobody names one uploaded in another organization (or in personal mode).
    refused = await member.post("/campaign-flows", json={"name": "x", "flow": photo_flow(theirs)})
    assert refused.status_code == 422, refused.text
    assert [(e["type"], e["field"]) for e in refused.json()["errors"]] == [
        ("unknown_attachment", "flow.nodes[0].attachment_id")
    ]
    assert (await ada.client.get(f"/attachments/{ours}")).status_code == 404
    patched = await member.patch(
        f"/campaign-flows/{saved['id']}", json={"flow": photo_flow(theirs)}
    )
    assert patched.status_code == 422, patched.text
    assert patched.json()["errors"][0]["type"] == "unknown_attachment"


async def test_a_caption_over_telegrams_limit_is_refused(ada: Person) -> None:
    photo = ok(await upload(ada, PNG, "image/png"), 201)["id"]
    body = {"name": "x", "flow": photo_flow(photo, "{Hi|Hello} " + "x" * 1020)}
    refused = await ada.client.post("/campaign-flows", json=body)
    assert refused.status_code == 422, refused.text
    assert [e["type"] for e in refused.json()["errors"]] == ["caption_too_long"]
