"""Bad input gets a clear 4xx and never a 500 (issue 13, item 5). Each family is rejected where
it enters: NUL characters by the request guard, crafted cursors by the cursor module, dates by
one bounded type, sizes by the body limit and the models' length limits."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.conftest import Live, Person, PersonFactory
from tests.builders import account, campaign, contact, ok

PROBLEM = "application/problem+json"


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body["errors"]]


@pytest.fixture
async def ann(person: PersonFactory) -> Person:
    return await person("ann")


# NUL characters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/contacts", {"telegram_username": "nul_user", "first_name": "A\x00"},
         "first_name"),
        ("POST", "/contacts", {"telegram_username": "nul_user", "custom_fields": {"k": "v\x00"}},
         "custom_fields.k"),
        ("POST", "/contacts", {"telegram_username": "nul_user", "custom_fields": {"k\x00": 1}},
         "custom_fields"),
        ("POST", "/contacts", {"telegram_username": "nul_user", "tags": ["ok", "b\x00d"]},
         "tags.1"),
        ("POST", "/campaign-flows", {"name": "C", "settings": {"response_handling":
         {"reply_tag": "r\x00"}}}, "settings.response_handling.reply_tag"),
        ("POST", "/campaign-flows", {"name": "C", "flow": {"nodes": [{"id": "s", "type":
         "send_message", "text": "hi\x00"}], "edges": []}}, "flow.nodes.0.text"),
        ("POST", "/organizations", {"name": "Org\x00"}, "name"),
        ("POST", "/telegram-accounts", {"display_name": "Sales\x00"}, "display_name"),
    ],
)  # fmt: skip
async def test_a_nul_character_in_a_json_body_is_422_naming_the_field(
    ann: Person, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = await ann.client.request(method, path, json=body)
    assert fields(problem(response, 422, "validation_error")) == [field]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/contacts", {"search": "a\x00b"}, "query.search"),
        ("/contacts", {"tag": "\x00"}, "query.tag"),
        ("/campaign-flows", {"tag": "x\x00"}, "query.tag"),
        ("/campaign-flows", {"search": "x\x00"}, "query.search"),
    ],
)
async def test_a_nul_character_in_a_query_parameter_is_422_naming_it(
    ann: Person, path: str, params: dict[str, str], field: str
) -> None:
    response = await ann.client.get(path, params=params)
    assert fields(problem(response, 422, "validation_error")) == [field]


async def test_a_nul_in_a_path_parameter_is_a_4xx(ann: Person) -> None:
    response = await ann.client.get("/campaign-flows/%00/logs")
    assert 400 <= response.status_code < 500, response.text


# Cursors ------------------------------------------------------------------------------------


def crafted(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


SOME_ID = str(uuid.uuid4())


def everywhere(value: Any, i: Any = SOME_ID) -> str:
    """A position with `value` under every key a list reads for its sort value."""
    return crafted({"c": value, "t": value, "v": value, "i": i, "s": "created_at", "o": "desc"})


BAD_CURSORS = [
    "not base64 !!",
    "%%%",
    crafted(b"\xff\xfe\x00"),
    crafted(b"not json"),
    crafted([]),
    crafted(None),
    crafted(7),
    crafted({}),
    everywhere("not-a-date", "x"),
    everywhere(5, 5),
    everywhere(None, None),
    everywhere([1], [1]),
    everywhere("2024-01-01T00:00:00"),  # no time zone
    everywhere("9999-12-31T23:59:59-14:00"),
    everywhere("0001-01-01T00:00:00+14:00"),
    everywhere("2024-01-01T00:00:00+00:00", 2**70),
    crafted({"v": "a\x00", "i": SOME_ID, "s": "name", "o": "asc"}),
    crafted({"v": "x", "i": SOME_ID, "s": "name", "o": "sideways"}),
]


@dataclass
class Lists:
    paths: list[str]


@pytest.fixture
async def lists(ann: Person) -> Lists:
    """One resource of each kind, so that every keyset list answers for real."""
    someone = await contact(ann.client, "cursor_probe")
    created = await campaign(ann.client, "Cursor probe")
    action = ok(
        await ann.client.post(
            "/bulk-actions",
            json={"name": "Tags", "action": "add_tags", "contact_ids": [someone["id"]],
                  "params": {"tags": ["x"]}},
        ),
        201,
    )  # fmt: skip
    operation = await ann.client.post(
        "/campaign-flows/bulk", json={"action": "disable", "campaign_ids": [created["id"]]}
    )
    assert operation.status_code in (200, 202), operation.text
    return Lists(
        [
            "/contacts",
            "/campaign-flows",
            "/campaign-flows?sort=name",
            f"/campaign-flows/{created['id']}/contacts",
            f"/campaign-flows/{created['id']}/logs",
            "/bulk-actions",
            f"/bulk-actions/{action['id']}/items",
            "/bulk-operations",
            f"/bulk-operations/{operation.json()['id']}/items",
        ]
    )


def valid_id(cursor: str) -> bool:
    """Whether the cursor holds a well-formed `i` (lists in id order need nothing else)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        uuid.UUID(raw["i"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return False
    return True


@pytest.mark.parametrize("cursor", BAD_CURSORS)
async def test_a_crafted_cursor_is_400_invalid_cursor_on_every_list(
    ann: Person, lists: Lists, cursor: str
) -> None:
    for path in lists.paths:
        if path.endswith("/items") and valid_id(cursor):
            continue
        response = await ann.client.get(path, params={"cursor": cursor})
        assert response.status_code == 400, (path, response.text)
        problem(response, 400, "invalid_cursor")


async def test_a_cursor_of_another_sort_order_is_400(ann: Person) -> None:
    for i in range(3):
        await campaign(ann.client, f"c{i}")
    first = ok(await ann.client.get("/campaign-flows", params={"limit": 1}))
    response = await ann.client.get(
        "/campaign-flows", params={"limit": 1, "sort": "name", "cursor": first["next_cursor"]}
    )
    problem(response, 400, "invalid_cursor")


# CSV import ---------------------------------------------------------------------------------


async def post_csv(person: Person, text: str | bytes) -> httpx.Response:
    raw = text.encode() if isinstance(text, str) else text
    return await person.client.post(
        "/contacts/import", content=raw, headers={"Content-Type": "text/csv"}
    )


async def test_a_csv_field_over_the_size_limit_is_a_whole_file_error(ann: Person) -> None:
    text = 'telegram_username,notes\nbig_field,"' + "x" * 200_000 + '"\nsmall_one,ok\n'
    body = problem(await post_csv(ann, text), 422, "validation_error")
    assert fields(body) == ["body"]
    assert "line 2" in body["errors"][0]["message"]


async def test_cr_only_line_endings_import(ann: Person) -> None:
    result = ok(await post_csv(ann, "telegram_username,first_name\rcr_only1,A\rcr_only2,B\r"))
    assert (result["imported"], result["failed"]) == (2, 0)


async def test_a_nul_byte_in_a_csv_cell_is_a_row_error(ann: Person) -> None:
    result = ok(
        await post_csv(ann, "telegram_username,first_name,notes\nnul_row1,A\x00,x\nnul_row2,B,y\n")
    )
    assert (result["imported"], result["failed"]) == (1, 1)
    assert [(e["row"], [x["field"] for x in e["errors"]]) for e in result["errors"]] == [
        (2, ["first_name"])
    ]
    header = await post_csv(ann, "telegram_username,no\x00tes\nnul_row3,x\n")
    assert fields(problem(header, 422, "validation_error")) == ["body"]


async def test_an_unbalanced_quote_is_a_whole_file_error(ann: Person) -> None:
    text = 'telegram_username,first_name\nquote_a,"Open\nquote_b,B\nquote_c,C\n'
    body = problem(await post_csv(ann, text), 422, "validation_error")
    assert "quote" in body["errors"][0]["message"] or "end of data" in body["errors"][0]["message"]
    assert ok(await ann.client.get("/contacts", params={"search": "quote_"}))["items"] == []


async def test_duplicate_header_columns_are_a_whole_file_error(ann: Person) -> None:
    text = "telegram_username,first_name, first_name\ndup_head,A,B\n"
    body = problem(await post_csv(ann, text), 422, "validation_error")
    assert "first_name" in body["errors"][0]["message"]


# Nulls and dates ----------------------------------------------------------------------------


async def test_patching_custom_fields_to_null_is_422(ann: Person) -> None:
    someone = await contact(ann.client, "null_fields")
    response = await ann.client.patch(f"/contacts/{someone['id']}", json={"custom_fields": None})
    assert fields(problem(response, 422, "validation_error")) == ["custom_fields"]


@pytest.mark.parametrize(
    ("zone", "at"),
    [
        ("Pacific/Kiritimati", "9999-12-31T23:00:00+14:00"),
        ("America/Los_Angeles", "0001-01-01T00:00:00-08:00"),
        ("UTC", "2101-01-01T00:00:00+00:00"),
        ("UTC", "1999-12-31T23:59:59+00:00"),
    ],
)
async def test_a_schedule_out_of_bounds_is_422_and_the_calendar_stays_whole(
    ann: Person, zone: str, at: str
) -> None:
    response = await ann.client.post(
        "/campaign-flows",
        json={"name": "Far", "timezone": zone, "launch_type": "schedule", "scheduled_at": at},
    )
    assert fields(problem(response, 422, "validation_error")) == ["scheduled_at"]
    created = await campaign(ann.client, "Near")
    patched = await ann.client.patch(
        f"/campaign-flows/{created['id']}",
        json={"timezone": zone, "launch_type": "schedule", "scheduled_at": at},
    )
    assert fields(problem(patched, 422, "validation_error")) == ["scheduled_at"]
    calendar = await ann.client.get(
        "/campaign-flows/calendar",
        params={"from": "2099-06-01T00:00:00+00:00", "to": "2099-12-31T00:00:00+00:00"},
    )
    assert calendar.status_code == 200, calendar.text


@pytest.mark.parametrize(
    "params",
    [
        {"from": "9999-12-30T00:00:00+00:00", "to": "9999-12-31T23:59:59-14:00"},
        {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02T00:00:00+00:00"},
    ],
)
async def test_calendar_bounds_are_422(ann: Person, params: dict[str, str]) -> None:
    response = await ann.client.get("/campaign-flows/calendar", params=params)
    problem(response, 422, "validation_error")


async def test_a_drip_start_out_of_bounds_is_422(ann: Person) -> None:
    someone = await contact(ann.client, "drip_far")
    body = {
        "name": "Far drip",
        "action": "add_tags",
        "contact_ids": [someone["id"]],
        "params": {"tags": ["x"]},
        "mode": "drip",
        "drip": {"batch_size": 1, "every": 1, "unit": "days", "start_at": "9999-12-31T00:00:00Z"},
    }
    response = await ann.client.post("/bulk-actions", json=body)
    assert fields(problem(response, 422, "validation_error")) == ["drip.start_at"]
    scheduled = {**body, "mode": "scheduled", "drip": None, "start_at": "9999-12-31T00:00:00Z"}
    response = await ann.client.post("/bulk-actions", json=scheduled)
    assert fields(problem(response, 422, "validation_error")) == ["start_at"]


async def test_list_filters_out_of_bounds_are_422(ann: Person) -> None:
    response = await ann.client.get(
        "/bulk-actions", params={"created_from": "9999-12-31T23:59:59-14:00"}
    )
    assert fields(problem(response, 422, "validation_error")) == ["query.created_from"]


# Sizes --------------------------------------------------------------------------------------


async def test_a_json_body_over_the_limit_is_413(ann: Person, live: Live) -> None:
    limit = live.settings.max_body_bytes
    big = {"telegram_username": "big_body", "first_name": "x" * limit}
    problem(await ann.client.post("/contacts", json=big), 413, "payload_too_large")
    # Without a Content-Length (chunked), the limit holds as the body streams in.

    async def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await ann.client.post(
        "/contacts", content=chunks(), headers={"Content-Type": "application/json"}
    )
    problem(streamed, 413, "payload_too_large")


async def test_an_import_may_be_larger_than_a_json_body(ann: Person, live: Live) -> None:
    rows = ["telegram_username,notes"]
    row = 0
    size = 0
    while size <= live.settings.max_body_bytes * 2:
        line = f"bulk_imp{row:06d},{'n' * 500}"
        rows.append(line)
        size += len(line) + 1
        row += 1
    result = ok(await post_csv(ann, "\n".join(rows) + "\n"))
    assert result["imported"] == row
    too_big = b"telegram_username\n" + b"a" * (live.settings.max_import_bytes + 1)
    problem(await post_csv(ann, too_big), 413, "payload_too_large")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/contacts", {"telegram_username": "long_cf", "custom_fields": {"k": "x" * 5001}},
         "custom_fields"),
        ("/campaign-flows", {"name": "Tz", "timezone": "x" * 65}, "timezone"),
        ("/campaign-flows", {"name": "Rc", "recurrence": "x" * 101}, "recurrence"),
        ("/campaign-flows", {"name": "D", "description": "x" * 5001}, "description"),
    ],
)  # fmt: skip
async def test_free_text_over_its_length_limit_is_422(
    ann: Person, path: str, body: dict[str, Any], field: str
) -> None:
    response = await ann.client.post(path, json=body)
    assert fields(problem(response, 422, "validation_error")) == [field]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/contacts", {"tag": "x" * 101}, "query.tag"),
        ("/campaign-flows", {"tag": "x" * 101}, "query.tag"),
    ],
)
async def test_query_text_over_its_length_limit_is_422(
    ann: Person, path: str, params: dict[str, str], field: str
) -> None:
    response = await ann.client.get(path, params=params)
    assert fields(problem(response, 422, "validation_error")) == [field]


# Protocol -----------------------------------------------------------------------------------


async def test_a_405_names_the_allowed_methods(ann: Person) -> None:
    sender = await account(ann.client)
    response = await ann.client.put(f"/telegram-accounts/{sender['id']}", json={})
    problem(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "PATCH"}


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_a_number_json_cannot_hold_is_422(ann: Person, number: str) -> None:
    raw = '{"telegram_username": "nan_field", "custom_fields": {"k": ' + number + "}}"
    response = await ann.client.post(
        "/contacts", content=raw.encode(), headers={"Content-Type": "application/json"}
    )
    assert fields(problem(response, 422, "validation_error")) == ["custom_fields.k"]
