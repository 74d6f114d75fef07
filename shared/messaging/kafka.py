"""Kafka plumbing shared by the services: topic creation, the relay's producer, subscribers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from prometheus_client import Gauge

from shared.messaging.consumer import BatchConsumer, Record
from shared.messaging.topic_admin import ensure_topics
from shared.messaging.topics import physical_name
from shared.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["LagMeter", "ensure_topics", "make_broker", "relay_producer", "subscribe"]

LAG = Gauge(
    "dripline_consumer_lag_records",
    "Records behind the high watermark, summed over this process's partitions of the topic, "
    "as of its last batch",
    ["consumer", "topic"],
)


class LagMeter:
    """Consumer lag of one subscription, measured after each batch.

    A partition's lag is its high watermark (which the consumer learns from every fetch
    response) minus the offset after the last record this process handled from it. Partitions
    this process no longer owns drop out; those it owns but has had no record from yet are not
    counted, since nothing known says where it stands on them."""

    def __init__(self, consumer: str, topic: str) -> None:
        self._gauge = LAG.labels(consumer, topic)
        self._next: dict[TopicPartition, int] = {}

    def batch_done(self, kafka: AIOKafkaConsumer, records: Sequence[Record]) -> None:
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._next[tp] = max(self._next.get(tp, 0), record.offset + 1)
        owned = kafka.assignment()
        lag = 0
        for tp in list(self._next):
            if tp not in owned:
                del self._next[tp]  # revoked: another instance measures it now
                continue
            highwater = kafka.highwater(tp)
            if highwater is not None:
                lag += max(0, highwater - self._next[tp])
        self._gauge.set(lag)


def relay_producer(settings: Settings) -> AIOKafkaProducer:
    # Tansu cannot do idempotent producers; ordering per key holds because the relay awaits each
    # batch before the next, and consumers deduplicate what a retry may repeat.
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
    )


def make_broker(settings: Settings, *, description: str) -> KafkaBroker:
    # FastStream logs two INFO lines per message by default; keep those at debug.
    return KafkaBroker(
        settings.bootstrap_servers,
        logger=logging.getLogger("shared.messaging.faststream"),
        log_level=logging.DEBUG,
        description=description,
        enable_idempotence=False,
        graceful_timeout=15.0,
    )


def subscribe(
    broker: KafkaBroker, settings: Settings, consumers: Sequence[BatchConsumer], **options: Any
) -> None:
    """Register one batch subscriber, one consumer in the service's group, for the topics of
    all `consumers` (one per topic, all of one service): each batch's records are handed, in
    their order, to the consumer of their topic.

    One group member per service rather than one per topic: a restart is one member leaving and
    one joining, where several members rejoined one after another (each rebalance waiting for
    the last), which on Tansu kept a restarted scheduler from consuming for a minute or more.

    Offsets are committed after the batch's transactions commit (ack after processing); a
    batch that fails on infrastructure is nacked and redelivered whole (every partition of it
    rewound), and the inbox drops what a topic's consumer had already committed.
    """
    if not consumers:
        return
    [name] = {consumer.name for consumer in consumers}
    by_topic = {
        physical_name(consumer.topic.value, settings.topic_prefix): consumer
        for consumer in consumers
    }
    if len(by_topic) != len(consumers):
        raise ValueError(f"{name}: one consumer per topic")
    lags = {topic: LagMeter(name, consumer.topic.value) for topic, consumer in by_topic.items()}

    async def handle(message: KafkaMessage = Context("message")) -> None:  # noqa: B008
        records: Sequence[Record] = message.raw_message
        per_topic: dict[str, list[Record]] = {}
        for record in records:
            per_topic.setdefault(record.topic, []).append(record)
        for topic, batch in per_topic.items():
            await by_topic[topic].process(batch)
            # Only a real Kafka consumer knows high watermarks (FastStream's test client does
            # not).
            if isinstance(message.consumer, AIOKafkaConsumer):
                lags[topic].batch_done(message.consumer, batch)

    handle.__name__ = f"{name}_consumer"
    broker.subscriber(
        *by_topic,
        group_id=settings.group_id(name),
        batch=True,
        max_records=settings.kafka_max_records,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        title=f"{name}:{','.join(c.topic.value for c in consumers)}",
        **options,
    )(handle)
