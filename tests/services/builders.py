"""What the service tests share: the sender as its consumer sees it, its due records, the
API's consumer of a command topic fed records by hand, and an app served in this process."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import uvicorn
from fastapi import FastAPI

from services.api.app import create_service as create_api
from services.sender.app import create_service
from shared.domain.clock import FixedClock
from shared.messaging.consumer import BatchConsumer
from shared.messaging.contracts import ExecutionDue, MessageType
from shared.messaging.envelope import Envelope, new_envelope
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


# An account that never waits, and a flow of one send: the sender tests that step one execution.
FREE_PACE = {"min_gap_s": 0, "jitter_s": 0, "daily_new_peers": 1000}
ONE_SEND: dict[str, Any] = {
    "start": "s1",
    "nodes": [
        {"id": "s1", "type": "send_message", "text": "hello"},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "s1", "to": "end"}],
}


async def step_due(
    pool: asyncpg.Pool[Any],
    execution: UUID,
    campaign: UUID,
    account: UUID,
    *,
    now: datetime,
    lease: datetime,
) -> None:
    """One due event for the execution, through the sender's real handler and consumer."""
    service = create_service_for(pool)
    consumer = BatchConsumer(
        name="sender",
        topic=Topic.EXECUTIONS_DUE,
        handlers=service.handlers[Topic.EXECUTIONS_DUE],
        pool=pool,
        clock=FixedClock(now),
    )
    await consumer.process([due_record(execution, campaign, account, lease)])


class ApiBus:
    """The API's consumer of a command topic, fed records at increasing offsets."""

    def __init__(self, pool: asyncpg.Pool[Any], topic: Topic) -> None:
        service = create_api(Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y"))
        self.topic = topic
        self.consumer = BatchConsumer(
            name="api",
            topic=topic,
            handlers=service.handlers[topic],
            pool=pool,
            clock=FixedClock(NOW),
        )
        self.offset = 0

    async def send(self, *messages: Envelope | bytes) -> None:
        records = []
        for message in messages:
            value = message if isinstance(message, bytes) else message.to_bytes()
            records.append(FakeRecord(value, self.offset, topic=self.topic.value))
            self.offset += 1
        await self.consumer.process(records)


@contextlib.asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    """The app served by uvicorn in this process on `port`, until the block ends; its URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                if task.done():
                    task.result()  # raises why it could not start
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
