"""dripline.organization.events: what happens to a whole context's sending, keyed by the
context (organization id, or user id in personal mode). The fleet circuit breaker (issue 14,
item 4; docs/accounts.md) pauses and resumes it. Consumed by the stats service (the activity
feed of the context's campaigns) and meant for other systems too (alerting, a CRM)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import Contract, MessageType, Payload
from shared.messaging.topics import Topic

EXAMPLE_ORGANIZATION = "4b3a2918-0f1e-4d2c-8b3a-291807f6e5d4"


class SendingChanged(Payload):
    organization_id: UUID | None
    user_id: UUID | None = Field(description="The context's user in personal mode.")
    troubled: int = Field(
        description="Sending accounts limited, frozen or cooling down within the last hour."
    )
    sending: int = Field(description="Sending accounts: not deleted, not dead.")
    share: float = Field(description="The share that pauses sending (the context's policy).")
    reason: str | None = Field(description="Why sending is paused (null when it resumed).")
    paused_since: datetime | None = Field(description="When the breaker tripped.")


OrganizationEvent = SendingChanged

SENDING_PAUSED = Contract(
    Topic.ORGANIZATION_EVENTS,
    MessageType.ORGANIZATION_SENDING_PAUSED,
    1,
    SendingChanged,
    False,
    {
        "organization_id": EXAMPLE_ORGANIZATION,
        "user_id": None,
        "troubled": 3,
        "sending": 4,
        "share": 0.6,
        "reason": "3 of 4 sending accounts are limited, frozen or in a flood cooldown within the"
        " last hour (pausing at 60%)",
        "paused_since": "2026-11-22T10:00:00Z",
    },
)
SENDING_RESUMED = Contract(
    Topic.ORGANIZATION_EVENTS,
    MessageType.ORGANIZATION_SENDING_RESUMED,
    1,
    SendingChanged,
    False,
    {
        "organization_id": EXAMPLE_ORGANIZATION,
        "user_id": None,
        "troubled": 1,
        "sending": 4,
        "share": 0.6,
        "reason": None,
        "paused_since": "2026-11-22T10:00:00Z",
    },
)
CONTRACTS: tuple[Contract[OrganizationEvent], ...] = (SENDING_PAUSED, SENDING_RESUMED)
