"""Versioned payload contracts: which message types each topic carries, and their schemas.

Other systems publish commands against these contracts; a message that does not fit is
dead-lettered with the reason. Every contract carries an example, and the contract tests feed
each example through the consumer that handles it.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.domain.bulk import BulkAction, BulkStatus, CampaignFilter, ItemResult
from shared.messaging.envelope import Envelope
from shared.messaging.topics import Topic


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageType(StrEnum):
    CAMPAIGN_LAUNCH = "campaign.launch"
    CAMPAIGN_PAUSE = "campaign.pause"
    CAMPAIGN_STOP = "campaign.stop"
    CAMPAIGN_ENABLE = "campaign.enable"
    CAMPAIGN_DISABLE = "campaign.disable"
    CAMPAIGN_DELETE = "campaign.delete"
    CAMPAIGN_RESTORE = "campaign.restore"
    CAMPAIGN_DUPLICATE = "campaign.duplicate"
    CAMPAIGN_ADD_CONTACTS = "campaign.add_contacts"
    CAMPAIGN_REMOVE_CONTACTS = "campaign.remove_contacts"
    CAMPAIGN_STATUS_CHANGED = "campaign.status_changed"
    CAMPAIGN_COMMAND_REJECTED = "campaign.command_rejected"
    CAMPAIGN_CONTACTS_ADDED = "campaign.contacts_added"
    CAMPAIGN_CONTACTS_REMOVED = "campaign.contacts_removed"
    CAMPAIGN_DUPLICATED = "campaign.duplicated"
    EXECUTION_DUE = "execution.due"
    EXECUTION_PROGRESSED = "execution.progressed"
    MESSAGE_SENT = "message.sent"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_DELIVERED = "message.delivered"
    REPLY_RECEIVED = "reply.received"
    ACCOUNT_HEALTH_CHANGED = "account.health_changed"
    BULK_OPERATION_REQUESTED = "bulk_operation.requested"
    BULK_OPERATION_PROGRESSED = "bulk_operation.progressed"
    BULK_OPERATION_COMPLETED = "bulk_operation.completed"
    BULK_ACTION_PROGRESSED = "bulk_action.progressed"
    BULK_ACTION_COMPLETED = "bulk_action.completed"


CampaignStatusName = Literal[
    "draft", "scheduled", "active", "paused", "completed", "cancelled", "failed"
]
MAX_CONTACTS_PER_COMMAND = 10_000
MAX_CAMPAIGNS_PER_BULK = 50_000


class CampaignCommand(Payload):
    """pause, stop, enable, disable, delete and restore name only their campaign."""

    campaign_id: UUID


class CampaignLaunch(Payload):
    campaign_id: UUID
    reset_completed: bool = Field(
        default=False,
        description="Also restart completed executions (nobody is messaged twice by accident).",
    )


class CampaignDuplicate(Payload):
    campaign_id: UUID
    copy_id: UUID = Field(
        description="The id the copy gets; chosen by the requester, so a "
        "redelivered command creates one copy."
    )


class CampaignContacts(Payload):
    campaign_id: UUID
    contact_ids: list[UUID] = Field(min_length=1, max_length=MAX_CONTACTS_PER_COMMAND)


class CampaignStatusChanged(Payload):
    """The outcome of a lifecycle command that was applied (also when nothing had to change)."""

    campaign_id: UUID
    previous_status: CampaignStatusName
    status: CampaignStatusName
    enabled: bool
    cause: str = Field(description="The command type that caused the change.")
    previous_enabled: bool | None = None
    deleted: bool = False
    executions_affected: int = Field(
        default=0, description="Executions resumed, paused or cancelled by the command."
    )


class Unmet(Payload):
    code: str
    detail: str


class CampaignCommandRejected(Payload):
    campaign_id: UUID
    command: str
    code: str = Field(description="Stable machine code, as in HTTP problem details.")
    detail: str
    unmet: list[Unmet] = Field(
        default_factory=list, description="Each unmet launch requirement, with its own code."
    )


class CampaignContactsAdded(Payload):
    campaign_id: UUID
    requested: int
    added: int
    skipped_duplicates: int
    not_found: int = Field(description="Contacts that do not exist or that the actor cannot see.")
    reactivated: bool = Field(description="A completed campaign became active again.")


class CampaignContactsRemoved(Payload):
    campaign_id: UUID
    requested: int
    removed: int
    not_in_campaign: int


class CampaignDuplicated(Payload):
    campaign_id: UUID
    copy_id: UUID


class ExecutionDue(Payload):
    execution_id: UUID
    campaign_id: UUID
    telegram_account_id: UUID
    lease_until: datetime | None = Field(
        default=None, description="The claim this event belongs to; a stale event is ignored."
    )


ExecutionStatusName = Literal[
    "pending", "running", "waiting", "paused", "completed", "failed", "cancelled"
]


class ExecutionProgressed(Payload):
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    previous_status: ExecutionStatusName
    status: ExecutionStatusName
    node_id: str | None
    detail: str = ""


class MessageSent(Payload):
    message_id: UUID
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    telegram_account_id: UUID
    node_id: str
    variant: str | None = None


class MessageFailed(Payload):
    message_id: UUID | None
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    telegram_account_id: UUID
    node_id: str | None
    code: str = Field(description="contact_permanent, account_limited, account_dead, unknown")
    reason: str


class MessageDelivered(Payload):
    """Telegram has no delivery receipts for user chats: a read or a reply is the confirmation."""

    campaign_id: UUID
    execution_id: UUID
    message_ids: list[UUID]
    via: Literal["read", "reply"]


class ReplyReceived(Payload):
    message_id: UUID
    execution_id: UUID
    campaign_id: UUID
    contact_id: UUID
    telegram_account_id: UUID


class AccountHealthChanged(Payload):
    telegram_account_id: UUID
    previous_status: str
    status: str
    detail: str | None = None
    cooldown_until: datetime | None = None


class BulkOperationRequest(Payload):
    """A bulk operation over campaigns (spec 000): campaign_ids, or a filter meaning every
    campaign that matches and that the actor can see in that view mode."""

    operation_id: UUID = Field(
        description="Chosen by the requester; a repeated request with this id is applied once."
    )
    action: BulkAction
    campaign_ids: list[UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_CAMPAIGNS_PER_BULK
    )
    filter: CampaignFilter | None = None
    reset_completed: bool = Field(
        default=False, description="launch only: also restart completed executions."
    )

    @model_validator(mode="after")
    def _one_selection(self) -> BulkOperationRequest:
        if (self.campaign_ids is None) == (self.filter is None):
            raise ValueError("give either campaign_ids or filter, not both and not neither")
        return self


class BulkItemOutcome(Payload):
    campaign_id: UUID
    result: ItemResult
    code: str
    message: str
    cancelled_executions: int = 0


class BulkOperationProgress(Payload):
    """Where an operation stands; `items` are the outcomes of the batch just processed (empty
    in bulk_operation.completed, which closes the operation)."""

    operation_id: UUID
    action: BulkAction
    status: BulkStatus
    total: int
    processed: int
    success_count: int
    skipped_count: int
    error_count: int
    cancelled_executions: int
    error_message: str | None = None
    items: list[BulkItemOutcome] = Field(default_factory=list)


class BulkActionProgress(Payload):
    """A bulk action over contacts after a batch (progressed) or at its end (completed)."""

    action_id: UUID
    name: str
    action: str
    status: str
    batch: int = Field(description="Batches released so far.")
    batch_size: int = Field(description="Contacts in the batch just processed.")
    total: int
    processed: int
    success_count: int
    skipped_count: int
    error_count: int
    next_batch_at: datetime | None = None


@dataclass(frozen=True)
class Contract:
    topic: Topic
    type: MessageType
    version: int
    payload: builtins.type[Payload]
    requires_actor: bool
    example: dict[str, Any]


_CAMPAIGN = "0b9d3c3e-6f6e-4c1a-9a55-3f1f8a2b7c10"
_COPY = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99"
_CONTACT = "7e6d5c4b-3a29-4180-9f7e-6d5c4b3a2918"
_EXECUTION = "5f0c1a7e-0d7b-4f7e-8b1e-1f0d3c2b4a50"
_MESSAGE = "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8"
_ACCOUNT = "9a1e2b3c-4d5e-4f60-8a7b-1c2d3e4f5a6b"
_OPERATION = "2e4c6a80-1b3d-4f5e-8a7c-9d0e1f2a3b4c"
_PROGRESS: dict[str, Any] = {
    "operation_id": _OPERATION,
    "action": "stop",
    "status": "processing",
    "total": 3,
    "processed": 2,
    "success_count": 1,
    "skipped_count": 1,
    "error_count": 0,
    "cancelled_executions": 120,
    "error_message": None,
    "items": [],
}
_C = Topic.CAMPAIGN_COMMANDS
_E = Topic.CAMPAIGN_EVENTS
CONTRACTS: tuple[Contract, ...] = (
    Contract(
        _C,
        MessageType.CAMPAIGN_LAUNCH,
        1,
        CampaignLaunch,
        True,
        {"campaign_id": _CAMPAIGN, "reset_completed": False},
    ),
    *(
        Contract(_C, command, 1, CampaignCommand, True, {"campaign_id": _CAMPAIGN})
        for command in (
            MessageType.CAMPAIGN_PAUSE,
            MessageType.CAMPAIGN_STOP,
            MessageType.CAMPAIGN_ENABLE,
            MessageType.CAMPAIGN_DISABLE,
            MessageType.CAMPAIGN_DELETE,
            MessageType.CAMPAIGN_RESTORE,
        )
    ),
    Contract(
        _C,
        MessageType.CAMPAIGN_DUPLICATE,
        1,
        CampaignDuplicate,
        True,
        {"campaign_id": _CAMPAIGN, "copy_id": _COPY},
    ),
    Contract(
        _C,
        MessageType.CAMPAIGN_ADD_CONTACTS,
        1,
        CampaignContacts,
        True,
        {"campaign_id": _CAMPAIGN, "contact_ids": [_CONTACT]},
    ),
    Contract(
        _C,
        MessageType.CAMPAIGN_REMOVE_CONTACTS,
        1,
        CampaignContacts,
        True,
        {"campaign_id": _CAMPAIGN, "contact_ids": [_CONTACT]},
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_STATUS_CHANGED,
        1,
        CampaignStatusChanged,
        False,
        {
            "campaign_id": _CAMPAIGN,
            "previous_status": "draft",
            "status": "active",
            "enabled": True,
            "cause": "campaign.launch",
            "previous_enabled": True,
            "deleted": False,
            "executions_affected": 1,
        },
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_COMMAND_REJECTED,
        1,
        CampaignCommandRejected,
        False,
        {
            "campaign_id": _CAMPAIGN,
            "command": "campaign.launch",
            "code": "launch_requirements_unmet",
            "detail": "cannot launch: the campaign has no contacts; add at least one",
            "unmet": [
                {"code": "no_contacts", "detail": "the campaign has no contacts; add at least one"}
            ],
        },
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_CONTACTS_ADDED,
        1,
        CampaignContactsAdded,
        False,
        {
            "campaign_id": _CAMPAIGN,
            "requested": 3,
            "added": 2,
            "skipped_duplicates": 1,
            "not_found": 0,
            "reactivated": False,
        },
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_CONTACTS_REMOVED,
        1,
        CampaignContactsRemoved,
        False,
        {"campaign_id": _CAMPAIGN, "requested": 2, "removed": 1, "not_in_campaign": 1},
    ),
    Contract(
        _E,
        MessageType.CAMPAIGN_DUPLICATED,
        1,
        CampaignDuplicated,
        False,
        {"campaign_id": _CAMPAIGN, "copy_id": _COPY},
    ),
    Contract(
        Topic.EXECUTION_EVENTS,
        MessageType.EXECUTION_PROGRESSED,
        1,
        ExecutionProgressed,
        False,
        {
            "execution_id": _EXECUTION,
            "campaign_id": _CAMPAIGN,
            "contact_id": _CONTACT,
            "previous_status": "pending",
            "status": "waiting",
            "node_id": "wait",
            "detail": "waiting for a reply",
        },
    ),
    Contract(
        Topic.EXECUTION_EVENTS,
        MessageType.MESSAGE_SENT,
        1,
        MessageSent,
        False,
        {
            "message_id": _MESSAGE,
            "execution_id": _EXECUTION,
            "campaign_id": _CAMPAIGN,
            "contact_id": _CONTACT,
            "telegram_account_id": _ACCOUNT,
            "node_id": "hello",
            "variant": None,
        },
    ),
    Contract(
        Topic.EXECUTION_EVENTS,
        MessageType.MESSAGE_FAILED,
        1,
        MessageFailed,
        False,
        {
            "message_id": _MESSAGE,
            "execution_id": _EXECUTION,
            "campaign_id": _CAMPAIGN,
            "contact_id": _CONTACT,
            "telegram_account_id": _ACCOUNT,
            "node_id": "hello",
            "code": "contact_permanent",
            "reason": "privacy restricted",
        },
    ),
    Contract(
        Topic.EXECUTION_EVENTS,
        MessageType.MESSAGE_DELIVERED,
        1,
        MessageDelivered,
        False,
        {
            "campaign_id": _CAMPAIGN,
            "execution_id": _EXECUTION,
            "message_ids": [_MESSAGE],
            "via": "read",
        },
    ),
    Contract(
        Topic.EXECUTION_EVENTS,
        MessageType.REPLY_RECEIVED,
        1,
        ReplyReceived,
        False,
        {
            "message_id": _MESSAGE,
            "execution_id": _EXECUTION,
            "campaign_id": _CAMPAIGN,
            "contact_id": _CONTACT,
            "telegram_account_id": _ACCOUNT,
        },
    ),
    Contract(
        Topic.ACCOUNT_EVENTS,
        MessageType.ACCOUNT_HEALTH_CHANGED,
        1,
        AccountHealthChanged,
        False,
        {
            "telegram_account_id": _ACCOUNT,
            "previous_status": "active",
            "status": "cooldown",
            "detail": "flood wait of 120 s",
            "cooldown_until": "2026-11-22T10:02:00Z",
        },
    ),
    Contract(
        Topic.EXECUTIONS_DUE,
        MessageType.EXECUTION_DUE,
        1,
        ExecutionDue,
        False,
        {
            "execution_id": _EXECUTION,
            "campaign_id": _CAMPAIGN,
            "telegram_account_id": _ACCOUNT,
            "lease_until": "2026-11-22T10:01:00Z",
        },
    ),
    Contract(
        Topic.BULK_COMMANDS,
        MessageType.BULK_OPERATION_REQUESTED,
        1,
        BulkOperationRequest,
        True,
        {
            "operation_id": _OPERATION,
            "action": "stop",
            "campaign_ids": None,
            "filter": {
                "view_mode": "all",
                "status": ["active"],
                "enabled": None,
                "launch_type": None,
                "tag": "spring",
                "channel": None,
                "created_by": None,
                "search": None,
            },
            "reset_completed": False,
        },
    ),
    Contract(
        Topic.BULK_EVENTS,
        MessageType.BULK_OPERATION_PROGRESSED,
        1,
        BulkOperationProgress,
        False,
        {
            **_PROGRESS,
            "items": [
                {
                    "campaign_id": _CAMPAIGN,
                    "result": "succeeded",
                    "code": "stopped",
                    "message": "campaign stopped",
                    "cancelled_executions": 120,
                },
                {
                    "campaign_id": _COPY,
                    "result": "skipped",
                    "code": "invalid_status",
                    "message": "only active and paused campaigns are stopped, not draft",
                    "cancelled_executions": 0,
                },
            ],
        },
    ),
    *(
        Contract(
            Topic.BULK_EVENTS,
            kind,
            1,
            BulkActionProgress,
            False,
            {
                "action_id": _OPERATION,
                "name": "Spring outreach",
                "action": "send_message",
                "status": status,
                "batch": 2,
                "batch_size": 100,
                "total": 250,
                "processed": 200,
                "success_count": 198,
                "skipped_count": 1,
                "error_count": 1,
                "next_batch_at": next_at,
            },
        )
        for kind, status, next_at in (
            (MessageType.BULK_ACTION_PROGRESSED, "processing", "2026-11-22T15:00:00Z"),
            (MessageType.BULK_ACTION_COMPLETED, "completed", None),
        )
    ),
    Contract(
        Topic.BULK_EVENTS,
        MessageType.BULK_OPERATION_COMPLETED,
        1,
        BulkOperationProgress,
        False,
        {**_PROGRESS, "status": "completed", "processed": 3, "error_count": 1},
    ),
)

_BY_KEY: dict[tuple[str, str, int], Contract] = {
    (c.topic.value, c.type.value, c.version): c for c in CONTRACTS
}


def contract_for(topic: Topic, type_: str, version: int) -> Contract | None:
    return _BY_KEY.get((topic.value, type_, version))


def contracts_on(topic: Topic) -> list[Contract]:
    return [c for c in CONTRACTS if c.topic is topic]


class ContractViolation(Exception):
    """A message that does not fit the published contract; `reason` says why, for the DLQ."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decoded:
    envelope: Envelope
    payload: Payload
    contract: Contract


def decode(topic: Topic, value: bytes | None) -> Decoded:
    if value is None:
        raise ContractViolation("empty record: a message must be a JSON envelope")
    try:
        raw = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractViolation(f"not JSON: {exc}") from exc
    try:
        envelope = Envelope.model_validate(raw)
    except ValidationError as exc:
        raise ContractViolation(f"invalid envelope: {_summarise(exc)}") from exc
    contract = contract_for(topic, envelope.type, envelope.version)
    if contract is None:
        known = ", ".join(f"{c.type}@v{c.version}" for c in contracts_on(topic)) or "none"
        raise ContractViolation(
            f"unknown message type {envelope.type!r} version {envelope.version} on {topic.value}"
            f" (known: {known})"
        )
    if contract.requires_actor and envelope.actor is None:
        raise ContractViolation(f"{envelope.type} requires an actor")
    try:
        payload = contract.payload.model_validate(envelope.payload)
    except ValidationError as exc:
        raise ContractViolation(f"invalid {envelope.type} payload: {_summarise(exc)}") from exc
    return Decoded(envelope, payload, contract)


def _summarise(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '<root>'}: {error['msg']}"
        for error in exc.errors()
    )
