"""dripline.executions.due: an execution the scheduler claimed for the sender, keyed by the
Telegram account that sends it."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from shared.messaging.contracts.base import (
    EXAMPLE_ACCOUNT,
    EXAMPLE_CAMPAIGN,
    EXAMPLE_EXECUTION,
    Contract,
    MessageType,
    Payload,
)
from shared.messaging.topics import Topic


class ExecutionDue(Payload):
    execution_id: UUID
    campaign_id: UUID
    telegram_account_id: UUID
    lease_until: datetime | None = Field(
        default=None, description="The claim this event belongs to; a stale event is ignored."
    )


DUE = Contract(
    Topic.EXECUTIONS_DUE,
    MessageType.EXECUTION_DUE,
    1,
    ExecutionDue,
    False,
    {
        "execution_id": EXAMPLE_EXECUTION,
        "campaign_id": EXAMPLE_CAMPAIGN,
        "telegram_account_id": EXAMPLE_ACCOUNT,
        "lease_until": "2026-11-22T10:01:00Z",
    },
)
CONTRACTS: tuple[Contract[ExecutionDue], ...] = (DUE,)
