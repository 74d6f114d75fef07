"""Waiting for the outcome of a command the API published.

Every command another system (or the API on a user's behalf) may ask for is answered by an
outcome event under the command's correlation id (docs/architecture.md, "Request and reply").
The API reads the topics those outcomes travel on without a consumer group (every API instance
sees every event, from the moment it started) and resolves the waiter registered under the
event's correlation id: one waiter for campaign lifecycle commands, bulk operations and account
health checks alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from uuid import UUID

from faststream import Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage

from shared.messaging.contracts import ContractViolation, Decoded, MessageType, Payload, decode
from shared.messaging.topics import Topic, physical_name
from shared.settings import Settings

log = logging.getLogger(__name__)

# The topics that carry the outcomes of the commands the API publishes.
OUTCOME_TOPICS = (Topic.CAMPAIGN_EVENTS, Topic.BULK_EVENTS, Topic.ACCOUNT_EVENTS)


class ReplyWaiter:
    def __init__(self) -> None:
        self._pending: dict[UUID, tuple[frozenset[str], asyncio.Future[Decoded[Payload]]]] = {}

    @contextlib.asynccontextmanager
    async def expect(
        self, correlation_id: UUID, outcomes: Iterable[MessageType]
    ) -> AsyncIterator[asyncio.Future[Decoded[Payload]]]:
        """Resolve with the first event under `correlation_id` whose type is one of `outcomes`
        (a command may cause several events; the caller names the ones that answer it)."""
        future: asyncio.Future[Decoded[Payload]] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = (frozenset(o.value for o in outcomes), future)
        try:
            yield future
        finally:
            self._pending.pop(correlation_id, None)

    def awaited(self, headers: Sequence[tuple[str, bytes]]) -> bool:
        """Whether a record may answer a waiting request, by its correlation-id header (every
        envelope's headers repeat it), so that the many events nobody here waits for are not
        decoded; a record without the header is decoded to find out."""
        for name, value in headers:
            if name == "correlation-id":
                try:
                    return UUID(value.decode()) in self._pending
                except (UnicodeDecodeError, ValueError):
                    return False
        return True

    def deliver(self, topic: Topic, value: bytes | None) -> None:
        try:
            decoded = decode(topic, value)
        except ContractViolation as exc:
            # Not ours to reject: the stats service dead-letters bad events on these topics.
            log.debug("ignoring an event that breaks the contract: %s", exc.reason)
            return
        pending = self._pending.get(decoded.envelope.correlation_id)
        if pending is None:
            return
        outcomes, future = pending
        if decoded.envelope.type in outcomes and not future.done():
            future.set_result(decoded)

    def subscribe(self, broker: KafkaBroker, settings: Settings) -> None:
        """One subscriber (one Kafka consumer) for all the outcome topics."""
        topics = {physical_name(t.value, settings.topic_prefix): t for t in OUTCOME_TOPICS}

        async def api_replies(message: KafkaMessage = Context("message")) -> None:  # noqa: B008
            for record in message.raw_message:
                if self.awaited(record.headers):
                    self.deliver(topics[record.topic], record.value)

        broker.subscriber(
            *topics,
            batch=True,
            auto_offset_reset="latest",
            title="api:replies",
            description="Outcomes of the commands this API instance published.",
        )(api_replies)
