"""Test helpers: the infrastructure a session shares, settings for it, and reading topics.

Services run as real processes through `dripline.processes` (ServiceProcess, settings_env).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from dripline.infra import free_port
from shared.messaging.topics import physical_name
from shared.settings import Settings

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Infra:
    admin_dsn: str  # a database URL on the server, used to create and drop test databases
    bootstrap: str

    def dsn(self, database: str) -> str:
        base, _, _ = self.admin_dsn.rpartition("/")
        query = ""
        if "?" in self.admin_dsn:
            query = "?" + self.admin_dsn.split("?", 1)[1]
        return f"{base}/{database}{query}"


# Fixed so a test can open what a service stored; the Telethon tests talk to a local server.
TEST_SESSION_KEY = "7jtXMSbXs3Y1VFkLHr1hjKtsnxIj-Oe6a8o1Yl7a3bQ="


def make_settings(dsn: str, bootstrap: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "kafka_bootstrap": bootstrap,
        "topic_prefix": prefix,
        "kafka_session_timeout_ms": 1500,
        "kafka_heartbeat_interval_ms": 300,
        "outbox_poll_interval_s": 0.5,
        "sweep_interval_s": 0.2,
        "command_wait_s": 10.0,
        "db_pool_max": 5,
        "session_key": TEST_SESSION_KEY,
        "telegram_api_id": 1,
        "telegram_api_hash": "fake-telegram",
    }
    values.update(overrides)
    return Settings(**values)


def new_ports(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "api_port": free_port(),
            "scheduler_port": free_port(),
            "sender_port": free_port(),
            "stats_port": free_port(),
        }
    )


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, timeout_s: float = 20
) -> list[Any]:
    """Every record on a topic from the beginning, once `expected` have arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


async def produce(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def topic(settings: Settings, logical: str) -> str:
    return physical_name(logical, settings.topic_prefix)


async def eventually(check: Any, timeout_s: float = 20, interval_s: float = 0.1) -> Any:
    """Await `check()` until it returns something truthy; returns that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s (last: {result!r})")
        await asyncio.sleep(interval_s)


async def find_on_topic(
    bootstrap: str, topic: str, predicate: Any, *, timeout_s: float = 20
) -> list[Any]:
    """Every record on a topic, from the beginning, that matches `predicate`; waits until at
    least one does (topics shared by many tests hold other records too)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    found: list[Any] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            found.extend(r for records in batch.values() for r in records if predicate(r))
            if found and not batch:
                break  # caught up with the topic
    finally:
        await consumer.stop()
    return found
