"""Typed rows at the SQL boundary, as procrastinate's `Job.from_row`: a query that selects a
table's row (`SELECT *` or the same columns) hands its record to `from_row`, and the code above
reads attributes mypy checks instead of `row["..."]` strings it cannot. A row also answers the
domain's questions about itself (`BulkActionRow.plan`, `BulkOperationRow.reset_completed`), so
that mapping is written once.

`from_row` takes any mapping (an asyncpg.Record is one), so the tests build rows from dicts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from uuid import UUID

from shared.domain.bulk_actions import ActionStatus, BulkActionType, Mode
from shared.domain.bulk_operations import BulkAction, BulkStatus
from shared.domain.campaigns import CampaignState, CampaignStatus, LaunchType
from shared.domain.devices import DeviceIdentity
from shared.domain.drip import Plan
from shared.domain.executions import ExecutionStatus
from shared.domain.permissions import CampaignOwnership
from shared.domain.windows import window_of


class Row(Protocol):
    """A record by column name: an asyncpg.Record, or a dict in the tests."""

    def __getitem__(self, column: str, /) -> Any: ...


@dataclass(frozen=True)
class BulkActionRow:
    """A row of bulk_actions (the scheduler's due_action, the API's lock)."""

    id: UUID
    organization_id: UUID | None
    created_by: UUID
    action: BulkActionType
    mode: Mode
    selection: dict[str, Any]
    params: dict[str, Any]
    status: ActionStatus
    batch_size: int | None
    interval_seconds: int | None
    allowed_days: list[int] | None
    window_start: time | None
    window_end: time | None
    timezone: str
    start_at: datetime | None
    next_batch_at: datetime | None
    total: int
    processed: int
    success_count: int
    skipped_count: int
    error_count: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    name: str
    batches: int
    last_batch_at: datetime | None
    last_contact_id: UUID | None
    error_message: str | None
    source_action_id: UUID | None

    @classmethod
    def from_row(cls, row: Row) -> BulkActionRow:
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            created_by=row["created_by"],
            action=BulkActionType(row["action"]),
            mode=Mode(row["mode"]),
            selection=row["selection"],
            params=row["params"],
            status=ActionStatus(row["status"]),
            batch_size=row["batch_size"],
            interval_seconds=row["interval_seconds"],
            allowed_days=row["allowed_days"],
            window_start=row["window_start"],
            window_end=row["window_end"],
            timezone=row["timezone"],
            start_at=row["start_at"],
            next_batch_at=row["next_batch_at"],
            total=row["total"],
            processed=row["processed"],
            success_count=row["success_count"],
            skipped_count=row["skipped_count"],
            error_count=row["error_count"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            cancelled_at=row["cancelled_at"],
            name=row["name"],
            batches=row["batches"],
            last_batch_at=row["last_batch_at"],
            last_contact_id=row["last_contact_id"],
            error_message=row["error_message"],
            source_action_id=row["source_action_id"],
        )

    @property
    def plan(self) -> Plan:
        """When its batches are released: the mode, and for a drip its size, interval and
        window (shared/domain/drip.py)."""
        if self.mode is not Mode.DRIP:
            return Plan(self.mode, start_at=self.start_at)
        every = self.interval_seconds
        return Plan(
            self.mode,
            self.start_at,
            self.batch_size,
            timedelta(seconds=every) if every is not None else None,
            window_of(self.timezone, self.allowed_days, self.window_start, self.window_end),
        )


@dataclass(frozen=True)
class BulkOperationRow:
    """A row of bulk_operations (the scheduler's, which owns the table; the API's views add the
    requester's email beside it)."""

    id: UUID
    organization_id: UUID | None
    requested_by: UUID
    action: BulkAction
    selection: dict[str, Any]
    status: BulkStatus
    total: int
    processed: int
    success_count: int
    skipped_count: int
    error_count: int
    cancelled_executions: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    options: dict[str, Any]
    origin: str
    correlation_id: UUID | None
    error_message: str | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> BulkOperationRow:
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            requested_by=row["requested_by"],
            action=BulkAction(row["action"]),
            selection=row["selection"],
            status=BulkStatus(row["status"]),
            total=row["total"],
            processed=row["processed"],
            success_count=row["success_count"],
            skipped_count=row["skipped_count"],
            error_count=row["error_count"],
            cancelled_executions=row["cancelled_executions"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            completed_at=row["completed_at"],
            options=row["options"],
            origin=row["origin"],
            correlation_id=row["correlation_id"],
            error_message=row["error_message"],
            updated_at=row["updated_at"],
        )

    @property
    def reset_completed(self) -> bool:
        """A launch that also restarts completed executions (the request's option)."""
        return bool(self.options.get("reset_completed", False))


@dataclass(frozen=True)
class CampaignRow:
    """What the state machine and the permissions read of a campaigns row: any query that
    selects these columns (the scheduler's lock_campaigns, the API's get and lock) gives one."""

    id: UUID
    organization_id: UUID | None
    created_by: UUID
    status: CampaignStatus
    enabled: bool
    launch_type: LaunchType
    deleted_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> CampaignRow:
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            created_by=row["created_by"],
            status=CampaignStatus(row["status"]),
            enabled=row["enabled"],
            launch_type=LaunchType(row["launch_type"]),
            deleted_at=row["deleted_at"],
        )

    @property
    def state(self) -> CampaignState:
        return CampaignState(
            self.status, self.enabled, self.launch_type, self.deleted_at is not None
        )

    @property
    def ownership(self) -> CampaignOwnership:
        return CampaignOwnership(self.created_by, self.organization_id)


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    """A locked execution with what a step needs (the sender's lock_executions,
    services/sender/executions.sql): its own columns, its campaign's flow
    and settings (as text: staging decodes them once per campaign), the contact's ways of being
    reached and template values, and what reach needs to refuse a send."""

    id: UUID
    campaign_id: UUID
    contact_id: UUID
    status: ExecutionStatus
    current_node_id: str | None
    next_execution_at: datetime | None
    lease_until: datetime | None
    variant: str | None
    context: dict[str, Any]
    started_at: datetime | None
    taken_over_at: datetime | None
    # the campaign's
    flow_json: str
    settings_json: str | None
    timezone: str
    campaign_status: CampaignStatus
    campaign_enabled: bool
    campaign_deleted_at: datetime | None
    account_id: UUID | None
    campaign_created_by: UUID
    # the contact's
    telegram_username: str | None
    phone: str | None
    telegram_user_id: int | None
    contact_tags: list[str] | None
    custom_fields: dict[str, Any] | None
    first_name: str | None
    last_name: str | None
    contact_deleted_at: datetime | None
    contact_time_zone: str | None
    opportunity_stages: dict[str, str] | None
    # reach's
    do_not_contact: bool
    recontact_after_days: int | None
    last_messaged_elsewhere: datetime | None
    messaged_here: bool

    @classmethod
    def from_row(cls, row: Row) -> ExecutionRow:
        return cls(
            id=row["id"],
            campaign_id=row["campaign_id"],
            contact_id=row["contact_id"],
            status=ExecutionStatus(row["status"]),
            current_node_id=row["current_node_id"],
            next_execution_at=row["next_execution_at"],
            lease_until=row["lease_until"],
            variant=row["variant"],
            context=row["context"],
            started_at=row["started_at"],
            taken_over_at=row["taken_over_at"],
            flow_json=row["flow_json"],
            settings_json=row["settings_json"],
            timezone=row["timezone"],
            campaign_status=CampaignStatus(row["campaign_status"]),
            campaign_enabled=row["campaign_enabled"],
            campaign_deleted_at=row["campaign_deleted_at"],
            account_id=row["account_id"],
            campaign_created_by=row["campaign_created_by"],
            telegram_username=row["telegram_username"],
            phone=row["phone"],
            telegram_user_id=row["telegram_user_id"],
            contact_tags=row["contact_tags"],
            custom_fields=row["custom_fields"],
            first_name=row["first_name"],
            last_name=row["last_name"],
            contact_deleted_at=row["contact_deleted_at"],
            contact_time_zone=row["contact_time_zone"],
            opportunity_stages=row["opportunity_stages"],
            do_not_contact=row["do_not_contact"],
            recontact_after_days=row["recontact_after_days"],
            last_messaged_elsewhere=row["last_messaged_elsewhere"],
            messaged_here=row["messaged_here"],
        )

    @property
    def settings(self) -> dict[str, Any] | None:
        """The campaign's settings, decoded (None: it has none)."""
        decoded: dict[str, Any] | None = (
            json.loads(self.settings_json) if self.settings_json else None
        )
        return decoded


# -- an account's device and proxy columns (telegram_accounts): the API writes them when an
# account is registered or its proxy set, the sender when a login or an import brings one in,
# and both read them back.


class Device(Protocol):
    """A device as the columns hold it: DeviceIdentity, the login command's LoginDevice, the
    API's DeviceSettings."""

    @property
    def device_model(self) -> str: ...
    @property
    def system_version(self) -> str: ...
    @property
    def app_version(self) -> str: ...
    @property
    def lang_code(self) -> str: ...
    @property
    def system_lang_code(self) -> str: ...


def device_of(row: Row) -> DeviceIdentity | None:
    """The device an account presents to Telegram; None while it has none yet (a simulated
    account, or a Telethon one registered before devices until the sender first connects it)."""
    if row["device_model"] is None:
        return None
    return DeviceIdentity(row["device_model"], row["system_version"], row["app_version"],
                          row["lang_code"], row["system_lang_code"])  # fmt: skip


def device_columns(device: Device | None) -> tuple[str | None, ...]:
    """device_model, system_version, app_version, lang_code, system_lang_code (all None:
    none)."""
    if device is None:
        return (None,) * 5
    return (device.device_model, device.system_version, device.app_version, device.lang_code,
            device.system_lang_code)  # fmt: skip


@dataclass(frozen=True)
class ProxyRow:
    """An account's proxy columns (proxy_type, _host, _port, _username, _secret), its password
    sealed (shared/crypto.py); named as the login command's LoginProxy is."""

    type: str
    host: str
    port: int
    username: str | None
    password_sealed: str | None

    @classmethod
    def from_row(cls, row: Row) -> ProxyRow | None:
        """None for an account that connects directly."""
        if row["proxy_type"] is None:
            return None
        return cls(row["proxy_type"], row["proxy_host"], row["proxy_port"],
                   row["proxy_username"], row["proxy_secret"])  # fmt: skip


class Proxy(Protocol):
    """A proxy as the columns hold it: ProxyRow, the login command's LoginProxy."""

    @property
    def type(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def username(self) -> str | None: ...
    @property
    def password_sealed(self) -> str | None: ...


def proxy_columns(proxy: Proxy | None) -> tuple[Any, ...]:
    """proxy_type, _host, _port, _username, _secret (all None: none)."""
    if proxy is None:
        return (None,) * 5
    return proxy.type, proxy.host, proxy.port, proxy.username, proxy.password_sealed
