"""shared.messaging.envelope: an envelope built without validation is one validation accepts."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from shared.messaging.contracts import ExecutionDue, MessageType
from shared.messaging.envelope import Actor, Envelope, new_envelope

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _due() -> ExecutionDue:
    return ExecutionDue(
        execution_id=uuid4(), campaign_id=uuid4(), telegram_account_id=uuid4(), lease_until=NOW
    )


def test_a_new_envelope_round_trips_through_validation_unchanged() -> None:
    actor = Actor(user_id=uuid4())
    envelope = new_envelope(
        type=MessageType.EXECUTION_DUE, payload=_due(), occurred_at=NOW, actor=actor, version=2
    )
    decoded = Envelope.model_validate_json(envelope.to_bytes())
    assert decoded == envelope
    assert decoded.correlation_id == envelope.message_id  # a new conversation starts here
    assert envelope.headers()["message-version"] == "2"


@pytest.mark.parametrize(
    ("changes", "refused"),
    [
        ({"occurred_at": datetime(2026, 11, 29, 12, 0)}, "time zone"),
        ({"type": ""}, "a type"),
        ({"version": 0}, "version"),
    ],
)
def test_what_validation_would_refuse_is_refused(changes: dict[str, object], refused: str) -> None:
    arguments: dict[str, object] = {
        "type": MessageType.EXECUTION_DUE,
        "payload": _due(),
        "occurred_at": NOW,
        "actor": None,
        "version": 1,
    }
    with pytest.raises(ValueError, match=refused):
        new_envelope(**{**arguments, **changes})  # type: ignore[arg-type]
