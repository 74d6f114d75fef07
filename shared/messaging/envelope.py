"""The envelope every Kafka message travels in, and the headers that describe it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Actor(BaseModel):
    """Who asked for a command; permissions are checked against this user exactly as for HTTP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: UUID
    organization_id: UUID | None = Field(
        default=None, description="The organization context; null means personal mode."
    )


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: UUID = Field(description="Unique per message; consumers apply it at most once.")
    type: str = Field(description="Message type, e.g. campaign.launch.", min_length=1)
    version: int = Field(default=1, ge=1, description="Schema version of the payload.")
    occurred_at: AwareDatetime
    actor: Actor | None = None
    correlation_id: UUID = Field(description="Carried unchanged from a command to its results.")
    causation_id: UUID | None = Field(default=None, description="The message that caused this one.")
    payload: dict[str, Any]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def headers(self) -> dict[str, str]:
        return {
            "message-id": str(self.message_id),
            "message-type": self.type,
            "message-version": str(self.version),
            "correlation-id": str(self.correlation_id),
            "content-type": "application/json",
        }


def new_envelope(
    *,
    type: str,
    payload: BaseModel,
    occurred_at: datetime,
    actor: Actor | None,
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    version: int = 1,
) -> Envelope:
    # Built from typed values, so the model is constructed without validating them again
    # (validation walked the payload's dict: a tenth of dispatch's CPU, bench.dispatch under
    # py-spy). What validation would refuse is checked here; decoding still validates.
    if occurred_at.tzinfo is None or occurred_at.utcoffset() is None:
        raise ValueError(f"occurred_at must carry a time zone: {occurred_at!r}")
    if not type or version < 1:
        raise ValueError(f"a message needs a type and a version of 1 or more: {type!r} v{version}")
    message_id = uuid4()
    return Envelope.model_construct(
        message_id=message_id,
        type=type,
        version=version,
        occurred_at=occurred_at,
        actor=actor,
        correlation_id=correlation_id or message_id,
        causation_id=causation_id,
        payload=payload.model_dump(mode="json"),
    )


@dataclass(frozen=True)
class Cause:
    """Where an emitted message comes from: who asked for it, the conversation it belongs to
    (correlation) and the message that caused it. No correlation starts a new conversation."""

    actor: Actor | None = None
    correlation_id: UUID | None = None
    causation_id: UUID | None = None

    @classmethod
    def of(cls, envelope: Envelope) -> Cause:
        """An answer to `envelope` or a consequence of it: same actor, same conversation."""
        return cls(envelope.actor, envelope.correlation_id, envelope.message_id)
