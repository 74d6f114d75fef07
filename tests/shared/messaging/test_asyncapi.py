from __future__ import annotations

import json
from pathlib import Path

from shared.messaging.asyncapi import document
from shared.messaging.contracts import CONTRACTS

PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def test_the_published_document_matches_the_contracts() -> None:
    assert json.loads(PUBLISHED.read_text()) == json.loads(document()), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )


def test_every_contract_is_documented_with_its_payload_schema() -> None:
    spec = json.loads(document())
    schemas = spec["components"]["schemas"]
    for contract in CONTRACTS:
        assert contract.payload.__name__ in schemas
    addresses = {channel["address"] for channel in spec["channels"].values()}
    assert {c.topic.value for c in CONTRACTS} <= addresses
