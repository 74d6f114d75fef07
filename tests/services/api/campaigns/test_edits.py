"""The edit merge of PATCH /campaign-flows/{id}, table-driven: pure functions, no service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from services.api.campaigns import edits
from services.api.campaigns.models import CampaignPatch
from shared.domain.campaigns import CampaignStatus, FieldGroup

ACCOUNT = UUID("00000000-0000-0000-0000-0000000000aa")
AT = datetime(2030, 1, 2, 3, 4, tzinfo=UTC)
STORED: dict[str, Any] = {
    "name": "Spring",
    "description": "old",
    "telegram_account_id": ACCOUNT,
    "timezone": "Europe/Berlin",
    "launch_type": "schedule",
    "scheduled_at": AT,
    "recurrence": None,
    "flow": {"nodes": [], "edges": []},
    "settings": {
        "ab_test": {"enabled": True, "metric": "delivery_rate"},
        "response_handling": {"stop_on_reply": False, "reply_tag": None},
        "active_hours": None,
    },
    "tags": ["a"],
    # Columns the merge must not carry into the definition.
    "status": "scheduled",
    "enabled": True,
}
KEPT = {name: STORED[name] for name in edits.EDITABLE}


@pytest.mark.parametrize(
    ("patch", "changed"),
    [
        pytest.param({}, {}, id="nothing sent, nothing changes"),
        pytest.param({"name": "Summer"}, {"name": "Summer"}, id="a field present replaces"),
        pytest.param({"description": None}, {"description": None}, id="null clears"),
        pytest.param(
            {"telegram_account_id": None}, {"telegram_account_id": None}, id="null clears account"
        ),
        pytest.param(
            {"launch_type": "recurring", "recurrence": "0 9 * * 1"},
            {"launch_type": "recurring", "recurrence": "0 9 * * 1"},
            id="the launch type is stored as its value",
        ),
        pytest.param({"tags": ["x", "y"]}, {"tags": ["x", "y"]}, id="lists replace whole"),
        pytest.param(
            {"settings": {"response_handling": {"reply_tag": "replied"}}},
            {
                "settings": {
                    **STORED["settings"],
                    "response_handling": {"stop_on_reply": False, "reply_tag": "replied"},
                }
            },
            # Reported on issue 18: the group used to be replaced by the fields the patch set
            # in it, so the stored stop_on_reply=False read back as its default True.
            id="a settings group merges field by field: stop_on_reply kept",
        ),
        pytest.param(
            {"settings": {"ab_test": {"enabled": False}}},
            {
                "settings": {
                    **STORED["settings"],
                    "ab_test": {"enabled": False, "metric": "delivery_rate"},
                }
            },
            id="ab_test merges field by field: the metric kept",
        ),
        pytest.param(
            {"settings": {"active_hours": {"start": "09:00", "end": "17:00"}}},
            {
                "settings": {
                    **STORED["settings"],
                    "active_hours": {
                        "days": [1, 2, 3, 4, 5, 6, 7],
                        "start": "09:00:00",
                        "end": "17:00:00",
                        "in_recipient_zone": False,
                    },
                }
            },
            id="active_hours is one window: replaced whole",
        ),
        pytest.param(
            {"settings": {"response_handling": None, "active_hours": None}},
            {
                "settings": {
                    **STORED["settings"],
                    "response_handling": {
                        "stop_on_reply": True,
                        "reply_tag": None,
                        "stop_company_on_reply": "off",
                    },
                    "active_hours": None,
                }
            },
            id="null resets a group to its defaults, and clears the active hours",
        ),
        pytest.param(
            {"settings": {}}, {"settings": STORED["settings"]}, id="empty settings keep all"
        ),
    ],
)
def test_merge(patch: dict[str, Any], changed: dict[str, Any]) -> None:
    merged = edits.merge(STORED, CampaignPatch.model_validate(patch))
    assert merged == {**KEPT, **changed}
    # What the update binds: the enum's value, not the enum (a StrEnum compares equal to it).
    assert type(merged["launch_type"]) is str


def test_merge_leaves_the_stored_row_alone() -> None:
    stored = {**STORED, "settings": dict(STORED["settings"])}
    edits.merge(stored, CampaignPatch.model_validate({"settings": {"ab_test": {}}, "name": "x"}))
    assert stored == {**STORED, "settings": STORED["settings"]}


@pytest.mark.parametrize(
    ("patch", "fields"),
    [
        ({}, []),
        ({"name": "x", "description": None}, []),
        ({"name": None}, ["name"]),
        ({"timezone": None, "flow": None, "tags": None}, ["timezone", "flow", "tags"]),
        ({"launch_type": None, "settings": None}, ["launch_type", "settings"]),
    ],
)
def test_null_errors(patch: dict[str, Any], fields: list[str]) -> None:
    errors = edits.null_errors(CampaignPatch.model_validate(patch))
    assert sorted(e["field"] for e in errors) == sorted(fields)
    assert all(e["type"] == "missing" for e in errors)


@pytest.mark.parametrize(
    ("status", "patch", "fields"),
    [
        (CampaignStatus.DRAFT, {"name": "x"}, []),
        (CampaignStatus.DRAFT, {"launch_type": "schedule", "scheduled_at": None}, ["scheduled_at"]),
        (CampaignStatus.DRAFT, {"launch_type": "manual"}, []),
        (CampaignStatus.SCHEDULED, {"launch_type": "manual"}, ["launch_type"]),
        (CampaignStatus.SCHEDULED, {"launch_type": "recurring"}, ["recurrence"]),
        (CampaignStatus.DRAFT, {"recurrence": "not cron"}, ["recurrence"]),
        # Plan rules are checked only when the plan is touched.
        (CampaignStatus.SCHEDULED, {"name": "x"}, []),
        (CampaignStatus.DRAFT, {"flow": {"nodes": [{"id": "a"}], "edges": []}}, ["flow"]),
    ],
)
def test_merged_errors(status: CampaignStatus, patch: dict[str, Any], fields: list[str]) -> None:
    body = CampaignPatch.model_validate(patch)
    errors = edits.merged_errors(status, edits.merge(STORED, body), body)
    assert {e["field"].split(".")[0] for e in errors} == set(fields)


@pytest.mark.parametrize(
    ("patch", "groups"),
    [
        ({}, set()),
        ({"name": "x"}, {FieldGroup.METADATA}),
        ({"tags": []}, {FieldGroup.METADATA}),
        ({"flow": {}}, {FieldGroup.FLOW}),
        ({"scheduled_at": None}, {FieldGroup.FLOW}),
        ({"settings": {"ab_test": {}}}, {FieldGroup.AB_TEST}),
        ({"settings": {"active_hours": None}}, {FieldGroup.METADATA}),
        ({"settings": {}}, set()),
        (
            {"recurrence": None, "settings": {"ab_test": {}, "response_handling": {}}},
            {FieldGroup.FLOW, FieldGroup.AB_TEST, FieldGroup.METADATA},
        ),
    ],
)
def test_field_groups(patch: dict[str, Any], groups: set[FieldGroup]) -> None:
    assert edits.field_groups(CampaignPatch.model_validate(patch)) == groups
