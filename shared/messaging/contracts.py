"""Versioned payload contracts: which message types each topic carries, and their schemas.

Other systems publish commands against these contracts; a message that does not fit is
dead-lettered with the reason. Every contract carries an example, and the contract tests feed
each example through the consumer that handles it.
"""

from __future__ import annotations

import builtins
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.messaging.envelope import Envelope
from shared.messaging.topics import Topic


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageType(StrEnum):
    CAMPAIGN_LAUNCH = "campaign.launch"
    CAMPAIGN_STATUS_CHANGED = "campaign.status_changed"
    CAMPAIGN_COMMAND_REJECTED = "campaign.command_rejected"
    EXECUTION_DUE = "execution.due"


CampaignStatusName = Literal[
    "draft", "scheduled", "active", "paused", "completed", "cancelled", "failed"
]


class CampaignLaunch(Payload):
    campaign_id: UUID
    reset_completed: bool = Field(
        default=False,
        description="Also restart completed executions (nobody is messaged twice by accident).",
    )


class CampaignStatusChanged(Payload):
    campaign_id: UUID
    previous_status: CampaignStatusName
    status: CampaignStatusName
    enabled: bool
    cause: str = Field(description="The command type that caused the change.")


class CampaignCommandRejected(Payload):
    campaign_id: UUID
    command: str
    code: str = Field(description="Stable machine code, as in HTTP problem details.")
    detail: str


class ExecutionDue(Payload):
    execution_id: UUID
    campaign_id: UUID
    telegram_account_id: UUID


@dataclass(frozen=True)
class Contract:
    topic: Topic
    type: MessageType
    version: int
    payload: builtins.type[Payload]
    requires_actor: bool
    example: dict[str, Any]


_CAMPAIGN = "0b9d3c3e-6f6e-4c1a-9a55-3f1f8a2b7c10"
CONTRACTS: tuple[Contract, ...] = (
    Contract(Topic.CAMPAIGN_COMMANDS, MessageType.CAMPAIGN_LAUNCH, 1, CampaignLaunch, True,
             {"campaign_id": _CAMPAIGN, "reset_completed": False}),
    Contract(Topic.CAMPAIGN_EVENTS, MessageType.CAMPAIGN_STATUS_CHANGED, 1, CampaignStatusChanged,
             False, {"campaign_id": _CAMPAIGN, "previous_status": "draft", "status": "active",
                     "enabled": True, "cause": "campaign.launch"}),
    Contract(Topic.CAMPAIGN_EVENTS, MessageType.CAMPAIGN_COMMAND_REJECTED, 1,
             CampaignCommandRejected, False,
             {"campaign_id": _CAMPAIGN, "command": "campaign.launch", "code": "invalid_status",
              "detail": "an active campaign cannot be launched"}),
    Contract(Topic.EXECUTIONS_DUE, MessageType.EXECUTION_DUE, 1, ExecutionDue, False,
             {"execution_id": "5f0c1a7e-0d7b-4f7e-8b1e-1f0d3c2b4a50", "campaign_id": _CAMPAIGN,
              "telegram_account_id": "9a1e2b3c-4d5e-4f60-8a7b-1c2d3e4f5a6b"}),
)  # fmt: skip

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
