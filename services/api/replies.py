"""Waiting for the outcome of a command the API published.

The API reads campaign events without a consumer group (every API instance sees every event,
from the moment it started) and resolves the waiter registered under the event's correlation id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from uuid import UUID

from faststream import Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from shared.messaging.contracts import ContractViolation, Decoded, Payload, decode
from shared.messaging.topics import Topic, physical_name
from shared.settings import Settings

log = logging.getLogger(__name__)


class ReplyWaiter:
    def __init__(self) -> None:
        self._pending: dict[UUID, tuple[frozenset[str], asyncio.Future[Decoded[Payload]]]] = {}

    @contextlib.asynccontextmanager
    async def expect(
        self, correlation_id: UUID, outcomes: frozenset[str]
    ) -> AsyncIterator[asyncio.Future[Decoded[Payload]]]:
        """Resolve with the first event under `correlation_id` whose type is one of `outcomes`
        (a command may cause several events; the caller names the one that answers it)."""
        future: asyncio.Future[Decoded[Payload]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = (outcomes, future)
        try:
            yield future
        finally:
            self._pending.pop(correlation_id, None)

    def deliver(self, value: bytes | None) -> None:
        try:
            decoded = decode(Topic.CAMPAIGN_EVENTS, value)
        except ContractViolation as exc:
            # Not ours to reject: the stats service dead-letters bad events on this topic.
            log.debug("ignoring an event that breaks the contract: %s", exc.reason)
            return
        pending = self._pending.get(decoded.envelope.correlation_id)
        if pending is None:
            return
        outcomes, future = pending
        if decoded.envelope.type in outcomes and not future.done():
            future.set_result(decoded)

    def subscribe(self, broker: KafkaBroker, settings: Settings) -> None:
        async def api_replies(message: KafkaMessage = Context("message")) -> None:  # noqa: B008
            for record in message.raw_message:
                self.deliver(record.value)

        broker.subscriber(
            physical_name(Topic.CAMPAIGN_EVENTS.value, settings.topic_prefix),
            batch=True,
            auto_offset_reset="latest",
            title="api:replies",
            description="Outcomes of the commands this API instance published.",
        )(api_replies)
