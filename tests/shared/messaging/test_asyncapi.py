from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.messaging.asyncapi import document
from shared.messaging.contracts import CONTRACTS

PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.json"


def test_the_published_document_matches_the_contracts() -> None:
    # Byte for byte, as `make asyncapi` writes it, so `git diff` shows a stale document too.
    assert PUBLISHED.read_text() == document() + "\n", (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )


def test_the_document_does_not_depend_on_the_hash_seed() -> None:
    # FastStream's own order of channels and schemas changes with the hash seed (these three
    # seeds give different orders); the document sorts them.
    texts = {
        subprocess.run(
            [sys.executable, "-c", "from shared.messaging.asyncapi import document;"
             "print(document())"],
            env={**os.environ, "PYTHONHASHSEED": seed}, check=True, capture_output=True,
            text=True,
        ).stdout
        for seed in ("0", "1", "3")
    }  # fmt: skip
    assert len(texts) == 1


def test_every_contract_is_documented_with_its_payload_schema() -> None:
    spec = json.loads(document())
    schemas = spec["components"]["schemas"]
    for contract in CONTRACTS:
        assert contract.payload.__name__ in schemas
    addresses = {channel["address"] for channel in spec["channels"].values()}
    assert {c.topic.value for c in CONTRACTS} <= addresses
