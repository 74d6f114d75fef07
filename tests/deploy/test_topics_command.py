"""`dripline topics` against the session's broker (the embedded one unless told otherwise)."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from dripline.cli import main
from dripline.topics import create_topics, wanted_topics
from shared.messaging.topics import TOPICS
from tests.support import Infra


async def test_creates_every_missing_topic_once(infra: Infra) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    first = await create_topics(infra.bootstrap, prefix, 1)
    assert first.created == sorted(wanted_topics(prefix))
    assert len(first.created) == 2 * len(TOPICS)  # each topic and its dead-letter topic

    second = await create_topics(infra.bootstrap, prefix, 1)
    assert second.created == []
    assert second.short == {}

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(wanted_topics(prefix)))
    finally:
        await admin.close()
    partitions = {d["topic"]: len(d["partitions"]) for d in described}
    assert partitions == wanted_topics(prefix)


async def test_reports_topics_with_too_few_partitions(infra: Infra) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}."
    due = f"{prefix}dripline.executions.due"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(due, 2, 1)])
    finally:
        await admin.close()
    report = await create_topics(infra.bootstrap, prefix, 1)
    assert due not in report.created
    assert report.short == {due: (2, 16)}


async def test_rejects_a_replication_factor_below_one(infra: Infra) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        await create_topics(infra.bootstrap, "unused.", 0)


def test_the_command_line_creates_topics(
    infra: Infra, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.settings import get_settings

    prefix = f"t{uuid.uuid4().hex[:10]}."
    monkeypatch.setenv("DRIPLINE_KAFKA_BOOTSTRAP", infra.bootstrap)
    monkeypatch.setenv("DRIPLINE_TOPIC_PREFIX", prefix)
    get_settings.cache_clear()
    try:
        main(["topics", "--replication-factor", "1"])
    finally:
        get_settings.cache_clear()
    assert f"{prefix}dripline.executions.due" in capsys.readouterr().out
