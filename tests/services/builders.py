"""What the service tests share: the sender as its consumer sees it, and its due records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.sender.app import create_service
from shared.messaging.contracts import ExecutionDue, MessageType
from shared.messaging.envelope import new_envelope
from shared.messaging.topics import Topic
from shared.settings import Settings
from tests.builders import FakeRecord

# When the due events say they were emitted: collection time, as in the modules that use them.
NOW = datetime.now(UTC).replace(microsecond=0)


def create_service_for(pool: asyncpg.Pool[Any]) -> Any:
    service = create_service(Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y"))
    service._pool = pool  # as if started
    return service


def due_record(execution: UUID, campaign: UUID, account: UUID, lease: datetime) -> FakeRecord:
    envelope = new_envelope(
        type=MessageType.EXECUTION_DUE,
        occurred_at=NOW,
        actor=None,
        payload=ExecutionDue(
            execution_id=execution,
            campaign_id=campaign,
            telegram_account_id=account,
            lease_until=lease,
        ),
    )
    return FakeRecord(envelope.to_bytes(), 0, topic=Topic.EXECUTIONS_DUE.value)
