"""The typed rows read from any mapping (an asyncpg.Record is one), so dicts stand in here."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import uuid4

import pytest

from shared.db.rows import (
    BulkActionRow,
    BulkOperationRow,
    CampaignRow,
    ExecutionRow,
    ProxyRow,
    device_columns,
    device_of,
    proxy_columns,
)
from shared.domain.bulk_actions import ActionStatus, BulkActionType, Mode
from shared.domain.bulk_operations import BulkAction, BulkStatus
from shared.domain.campaigns import CampaignState, CampaignStatus, LaunchType
from shared.domain.devices import DeviceIdentity
from shared.domain.drip import Plan
from shared.domain.executions import ExecutionStatus
from shared.domain.permissions import CampaignOwnership
from shared.domain.windows import ALL_DAYS, Window
from shared.messaging.contracts import LoginDevice, LoginProxy
from tests.builders import execution_row, operation_row

START = datetime(2030, 1, 7, 9, tzinfo=UTC)


def action_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid4(),
        "organization_id": None,
        "created_by": uuid4(),
        "action": "add_tags",
        "mode": "all_at_once",
        "selection": {"contact_ids": []},
        "params": {"tags": ["vip"]},
        "status": "queued",
        "batch_size": None,
        "interval_seconds": None,
        "allowed_days": None,
        "window_start": None,
        "window_end": None,
        "timezone": "UTC",
        "start_at": None,
        "next_batch_at": START,
        "total": 0,
        "processed": 0,
        "success_count": 0,
        "skipped_count": 0,
        "error_count": 0,
        "created_at": START,
        "updated_at": START,
        "started_at": None,
        "completed_at": None,
        "cancelled_at": None,
        "name": "",
        "batches": 0,
        "last_batch_at": None,
        "last_contact_id": None,
        "error_message": None,
        "source_action_id": None,
    }
    return row | changes


def test_from_row_types_the_columns() -> None:
    record = action_row(status="paused", batches=3)
    row = BulkActionRow.from_row(record)
    assert row.id == record["id"]
    assert row.action is BulkActionType.ADD_TAGS
    assert row.mode is Mode.ALL_AT_ONCE
    assert row.status is ActionStatus.PAUSED
    assert row.batches == 3
    assert row.params == {"tags": ["vip"]}


def test_from_row_refuses_a_status_the_domain_does_not_know() -> None:
    with pytest.raises(ValueError, match="'lost' is not a valid ActionStatus"):
        BulkActionRow.from_row(action_row(status="lost"))


@pytest.mark.parametrize(
    ("columns", "plan"),
    [
        ({}, Plan(Mode.ALL_AT_ONCE)),
        ({"mode": "scheduled", "start_at": START}, Plan(Mode.SCHEDULED, start_at=START)),
        (
            {"mode": "drip", "batch_size": 50, "interval_seconds": 3600, "timezone": "Europe/Kyiv"},
            Plan(Mode.DRIP, None, 50, timedelta(hours=1), Window("Europe/Kyiv", ALL_DAYS)),
        ),
        (
            {
                "mode": "drip",
                "batch_size": 10,
                "interval_seconds": 60,
                "allowed_days": [1, 2, 3],
                "window_start": time(9),
                "window_end": time(17),
                "start_at": START,
            },
            Plan(
                Mode.DRIP,
                START,
                10,
                timedelta(minutes=1),
                Window("UTC", frozenset({1, 2, 3}), time(9), time(17)),
            ),
        ),
        (  # an empty array of days is every day, as NULL is
            {"mode": "drip", "batch_size": 1, "interval_seconds": 1, "allowed_days": []},
            Plan(Mode.DRIP, None, 1, timedelta(seconds=1), Window("UTC")),
        ),
    ],
)
def test_plan_is_the_rows_schedule(columns: dict[str, Any], plan: Plan) -> None:
    assert BulkActionRow.from_row(action_row(**columns)).plan == plan


def test_a_drip_row_without_an_interval_is_not_a_plan() -> None:
    row = BulkActionRow.from_row(action_row(mode="drip", batch_size=5))
    with pytest.raises(ValueError, match="drip mode needs a positive interval"):
        _ = row.plan


@pytest.mark.parametrize(
    ("columns", "state"),
    [
        ({}, CampaignState(CampaignStatus.DRAFT, True, LaunchType.NOW, False)),
        (
            {"status": "paused", "enabled": False, "deleted_at": START},
            CampaignState(CampaignStatus.PAUSED, False, LaunchType.NOW, True),
        ),
        (
            {"launch_type": "schedule", "status": "scheduled"},
            CampaignState(CampaignStatus.SCHEDULED, True, LaunchType.SCHEDULE, False),
        ),
    ],
)
def test_campaign_row_state_is_what_the_state_machine_takes(
    columns: dict[str, Any], state: CampaignState
) -> None:
    owner, organization = uuid4(), uuid4()
    record: dict[str, Any] = {
        "id": uuid4(),
        "organization_id": organization,
        "created_by": owner,
        "status": "draft",
        "enabled": True,
        "launch_type": "now",
        "deleted_at": None,
        "name": "ignored: not what the rules read",
    } | columns
    row = CampaignRow.from_row(record)
    assert row.state == state
    assert row.ownership == CampaignOwnership(owner, organization)


def test_operation_row_types_the_columns() -> None:
    record = operation_row(status="completed", processed=3, completed_at=START)
    row = BulkOperationRow.from_row(record)
    assert row.id == record["id"]
    assert row.action is BulkAction.LAUNCH
    assert row.status is BulkStatus.COMPLETED
    assert (row.processed, row.completed_at) == (3, START)


def test_operation_row_refuses_a_status_the_domain_does_not_know() -> None:
    with pytest.raises(ValueError, match="'lost' is not a valid BulkStatus"):
        BulkOperationRow.from_row(operation_row(status="lost"))


@pytest.mark.parametrize(
    ("options", "reset"),
    [({}, False), ({"reset_completed": False}, False), ({"reset_completed": True}, True)],
)
def test_operation_row_reset_completed_is_the_option(options: dict[str, Any], reset: bool) -> None:
    assert BulkOperationRow.from_row(operation_row(options=options)).reset_completed is reset


ACCOUNT_DEVICE = {
    "device_model": "MacBook Pro",
    "system_version": "macOS 14.6.1",
    "app_version": "5.8.3 x64",
    "lang_code": "en",
    "system_lang_code": "en-GB",
}
NO_DEVICE = dict.fromkeys(ACCOUNT_DEVICE)
ACCOUNT_PROXY = {
    "proxy_type": "socks5",
    "proxy_host": "10.0.0.1",
    "proxy_port": 1080,
    "proxy_username": "me",
    "proxy_secret": "sealed",
}
NO_PROXY = dict.fromkeys(ACCOUNT_PROXY)


@pytest.mark.parametrize(
    ("columns", "device"),
    [
        (NO_DEVICE, None),
        (ACCOUNT_DEVICE, DeviceIdentity("MacBook Pro", "macOS 14.6.1", "5.8.3 x64", "en", "en-GB")),
    ],
)
def test_an_accounts_device_columns_round_trip(
    columns: dict[str, Any], device: DeviceIdentity | None
) -> None:
    assert device_of(columns) == device
    assert device_columns(device) == tuple(columns.values())


@pytest.mark.parametrize(
    ("columns", "proxy"),
    [
        (NO_PROXY, None),
        (ACCOUNT_PROXY, ProxyRow("socks5", "10.0.0.1", 1080, "me", "sealed")),
        (
            ACCOUNT_PROXY | {"proxy_type": "http", "proxy_username": None, "proxy_secret": None},
            ProxyRow("http", "10.0.0.1", 1080, None, None),
        ),
    ],
)
def test_an_accounts_proxy_columns_round_trip(
    columns: dict[str, Any], proxy: ProxyRow | None
) -> None:
    assert ProxyRow.from_row(columns) == proxy
    assert proxy_columns(proxy) == tuple(columns.values())


def test_a_login_commands_proxy_and_device_are_stored_as_the_accounts_are() -> None:
    proxy = LoginProxy(type="socks5", host="10.0.0.1", port=1080, username="me",
                       password_sealed="sealed")  # fmt: skip
    device = LoginDevice(**ACCOUNT_DEVICE)
    assert proxy_columns(proxy) == tuple(ACCOUNT_PROXY.values())
    assert device_columns(device) == tuple(ACCOUNT_DEVICE.values())


def test_execution_row_types_the_columns() -> None:
    row = ExecutionRow.from_row(execution_row(status="waiting", campaign_status="paused"))
    assert row.status is ExecutionStatus.WAITING
    assert row.campaign_status is CampaignStatus.PAUSED
    assert row.current_node_id == "s1"


def test_execution_row_refuses_a_status_the_domain_does_not_know() -> None:
    with pytest.raises(ValueError, match="'sleeping'"):
        ExecutionRow.from_row(execution_row(status="sleeping"))


@pytest.mark.parametrize(
    ("settings_json", "settings"),
    [(None, None), ("null", None), ('{"response_handling": {}}', {"response_handling": {}})],
)
def test_execution_row_settings_are_the_campaigns_decoded(
    settings_json: str | None, settings: dict[str, Any] | None
) -> None:
    assert ExecutionRow.from_row(execution_row(settings_json=settings_json)).settings == settings
