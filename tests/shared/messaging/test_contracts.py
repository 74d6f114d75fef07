"""Decoding against the published contracts; what breaks them, and the reason given."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.messaging.contracts import (
    CONTRACTS,
    Contract,
    ContractViolation,
    Payload,
    account_commands,
    account_events,
    bulk_commands,
    bulk_events,
    campaign_commands,
    campaign_events,
    contact_commands,
    contact_events,
    contracts_on,
    conversation_events,
    decode,
    execution_events,
    executions_due,
    opportunity_events,
    organization_events,
)
from shared.messaging.topics import Topic

ACTOR = {"user_id": "00000000-0000-0000-0000-000000000001", "organization_id": None}


def envelope(contract: Contract[Payload], **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": "00000000-0000-0000-0000-0000000000aa",
        "type": contract.type.value,
        "version": contract.version,
        "occurred_at": "2026-11-22T10:00:00Z",
        "actor": ACTOR,
        "correlation_id": "00000000-0000-0000-0000-0000000000bb",
        "payload": contract.example,
    }
    body.update(changes)
    return body


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: f"{c.type}@v{c.version}")
def test_every_example_fits_its_contract(contract: Contract[Payload]) -> None:
    decoded = decode(contract.topic, json.dumps(envelope(contract)).encode())
    assert decoded.contract is contract
    assert decoded.payload.model_dump(mode="json") == {**contract.example}


# The module of each topic: its contracts, and only those, are the registry's for that topic.
TOPIC_MODULES = {
    Topic.CAMPAIGN_COMMANDS: campaign_commands,
    Topic.CAMPAIGN_EVENTS: campaign_events,
    Topic.EXECUTION_EVENTS: execution_events,
    Topic.ACCOUNT_COMMANDS: account_commands,
    Topic.ACCOUNT_EVENTS: account_events,
    Topic.EXECUTIONS_DUE: executions_due,
    Topic.BULK_COMMANDS: bulk_commands,
    Topic.BULK_EVENTS: bulk_events,
    Topic.OPPORTUNITY_EVENTS: opportunity_events,
    Topic.CONTACT_COMMANDS: contact_commands,
    Topic.CONTACT_EVENTS: contact_events,
    Topic.CONVERSATION_EVENTS: conversation_events,
    Topic.ORGANIZATION_EVENTS: organization_events,
}


@pytest.mark.parametrize("topic", list(Topic), ids=str)
def test_each_topic_has_its_module_and_the_registry_holds_it_whole(topic: Topic) -> None:
    module = TOPIC_MODULES.get(topic)
    declared = list(module.CONTRACTS) if module is not None else []
    assert contracts_on(topic) == declared


def test_no_contract_is_declared_twice() -> None:
    keys = [(c.topic, c.type, c.version) for c in CONTRACTS]
    assert len(keys) == len(set(keys))


LAUNCH = next(c for c in CONTRACTS if c.type == "campaign.launch")

VIOLATIONS = [
    (b"not json at all", "not JSON"),
    (None, "empty record"),
    (json.dumps(envelope(LAUNCH, type="campaign.explode")).encode(), "unknown message type"),
    (json.dumps(envelope(LAUNCH, version=7)).encode(), "version 7"),
    (json.dumps(envelope(LAUNCH, actor=None)).encode(), "requires an actor"),
    (json.dumps(envelope(LAUNCH, payload={"campaign_id": "nope"})).encode(),
     "invalid campaign.launch payload: campaign_id"),
    (json.dumps(envelope(LAUNCH, payload={"campaign_id": LAUNCH.example["campaign_id"],
                                          "surprise": 1})).encode(), "surprise"),
    (json.dumps({k: v for k, v in envelope(LAUNCH).items() if k != "message_id"}).encode(),
     "invalid envelope: message_id"),
    (json.dumps(envelope(LAUNCH, occurred_at="2026-11-22T10:00:00")).encode(),
     "invalid envelope: occurred_at"),  # a time without zone is ambiguous
]  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), VIOLATIONS)
def test_violations_name_their_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        decode(Topic.CAMPAIGN_COMMANDS, value)
    assert reason in caught.value.reason


def test_a_type_is_only_valid_on_its_own_topic() -> None:
    with pytest.raises(ContractViolation, match="unknown message type"):
        decode(Topic.CAMPAIGN_EVENTS, json.dumps(envelope(LAUNCH)).encode())
