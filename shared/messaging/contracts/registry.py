"""Every topic's contracts in one registry, and decoding a record against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Generic

from pydantic import ValidationError

from shared.messaging.contracts import (
    account_commands,
    account_events,
    bulk_commands,
    bulk_events,
    campaign_commands,
    campaign_events,
    contact_commands,
    contact_events,
    conversation_events,
    execution_events,
    executions_due,
    opportunity_events,
    organization_events,
)
from shared.messaging.contracts.base import Contract, Payload, PayloadT_co
from shared.messaging.envelope import Envelope
from shared.messaging.topics import Topic

CONTRACTS: tuple[Contract[Payload], ...] = (
    *campaign_commands.CONTRACTS,
    *campaign_events.CONTRACTS,
    *execution_events.CONTRACTS,
    *account_events.CONTRACTS,
    *account_commands.CONTRACTS,
    *executions_due.CONTRACTS,
    *bulk_commands.CONTRACTS,
    *bulk_events.CONTRACTS,
    *opportunity_events.CONTRACTS,
    *contact_commands.CONTRACTS,
    *contact_events.CONTRACTS,
    *conversation_events.CONTRACTS,
    *organization_events.CONTRACTS,
)

_BY_KEY: dict[tuple[str, str, int], Contract[Payload]] = {
    (c.topic.value, c.type.value, c.version): c for c in CONTRACTS
}


def contract_for(topic: Topic, type_: str, version: int) -> Contract[Payload] | None:
    return _BY_KEY.get((topic.value, type_, version))


def contracts_on(topic: Topic) -> list[Contract[Payload]]:
    return [c for c in CONTRACTS if c.topic is topic]


class ContractViolation(Exception):
    """A message that does not fit the published contract; `reason` says why, for the DLQ."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Decoded(Generic[PayloadT_co]):
    """A record that fits `contract`: its payload is an instance of `contract.payload`."""

    envelope: Envelope
    payload: PayloadT_co
    contract: Contract[PayloadT_co]


def decode(topic: Topic, value: bytes | None) -> Decoded[Payload]:
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
