"""A service restarted with SIGTERM consumes again soon: it has one Kafka consumer (one member of
its group) for all its topics, so a restart is one member leaving and one joining, not one per
topic rejoining after another (which took the scheduler a minute or more on Tansu)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from dripline.processes import ServiceProcess
from services.scheduler.app import create_service as scheduler_service
from services.stats.app import create_service as stats_service
from shared.messaging.topics import Topic
from shared.runtime import Service
from shared.settings import Settings
from tests.support import find_on_topic, produce, topic

# From SIGTERM's return to a record handled on every topic of the restarted service. Before one
# consumer per service the scheduler's figure was about a minute on this machine's Tansu.
RESTART_BOUND_S = 30.0
BUILDERS = {"scheduler": scheduler_service, "stats": stats_service}


async def handled_everywhere(settings: Settings, name: str, topics: list[Topic]) -> None:
    """A record breaking the contract on each topic, and each one dead-lettered by `name`: the
    service's consumer is assigned every topic and handles what it reads."""
    markers = {t: f'{{"restart-probe": "{uuid.uuid4()}"}}'.encode() for t in topics}
    for t, value in markers.items():
        await produce(settings.bootstrap_servers, topic(settings, t), value, b"probe")

    async def letter(t: Topic) -> None:
        [found] = await find_on_topic(
            settings.bootstrap_servers, topic(settings, t.dlq),
            lambda r, value=markers[t]: r.value == value, timeout_s=120,
        )  # fmt: skip
        headers = {k: v.decode() for k, v in found.headers}
        assert headers["dlq-consumer"] == name
        assert headers["dlq-source-topic"] == topic(settings, t)

    await asyncio.gather(*(letter(t) for t in topics))


@pytest.mark.parametrize("name", sorted(BUILDERS))
# The production session timeout and heartbeat (Settings' defaults), not the tests' shorter ones:
# rejoining members wait on them.
@pytest.mark.settings(kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=1000)
async def test_a_restarted_service_consumes_every_topic_again_soon(
    settings: Settings, name: str
) -> None:
    service: Service = BUILDERS[name](settings)
    topics = sorted(service.handlers, key=lambda t: t.value)
    assert len(topics) > 1  # the point: several topics, one consumer
    process = ServiceProcess(name, settings)
    process.start()
    try:
        await process.wait_healthy(timeout_s=120)
        first = time.monotonic()
        await handled_everywhere(settings, name, topics)
        print(f"{name}: first start, records handled after {time.monotonic() - first:.1f}s")
        assert process.stop() == 0, process.output()[-3000:]

        process.start()
        restarted = time.monotonic()
        await process.wait_healthy(timeout_s=120)
        healthy = time.monotonic() - restarted
        await handled_everywhere(settings, name, topics)
        elapsed = time.monotonic() - restarted
        print(
            f"{name}: restarted, healthy after {healthy:.1f}s, every topic handled {elapsed:.1f}s"
        )
        assert elapsed < RESTART_BOUND_S, elapsed
    finally:
        code = process.stop()
    assert code == 0, process.output()[-3000:]
