"""`dripline topics`: create the missing topics, with a replication factor of your choice.

Each service creates the topics it finds missing at start-up (Settings.create_topics), with
replication factor 1: right for one broker (the embedded one, deploy/docker-compose.yml), wrong
for a cluster, where a topic must survive the loss of a broker. On a cluster, run
`dripline topics --replication-factor 3` before the services and start them with
DRIPLINE_CREATE_TOPICS=false (deploy/k8s does both). Safe to run from many processes at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.messaging.topics import all_topic_partitions, physical_name

_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class TopicsReport:
    created: list[str]
    # Topics that exist with fewer partitions than the contract asks for: name -> (have, want).
    short: dict[str, tuple[int, int]]


def wanted_topics(prefix: str) -> dict[str, int]:
    """Every physical topic name, dead-letter topics included, with its partition count."""
    return {physical_name(name, prefix): count for name, count in all_topic_partitions().items()}


async def create_topics(bootstrap: str, prefix: str, replication_factor: int) -> TopicsReport:
    """Create every missing topic with its partition count and `replication_factor`; report
    what was created and which existing topics have fewer partitions than they should."""
    if replication_factor < 1:
        raise ValueError("the replication factor is at least 1")
    wanted = wanted_topics(prefix)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication_factor)
            for name, partitions in wanted.items()
            if name not in existing
        ]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(missing)
            for name, code, message in (error[:3] for error in response.topic_errors):
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:  # another process won the race: fine
                    raise RuntimeError(f"could not create topic {name}: {code} {message}")
        present = sorted(name for name in wanted if name in existing)
        short: dict[str, tuple[int, int]] = {}
        if present:
            for description in await admin.describe_topics(present):
                name = description["topic"]
                have = len(description["partitions"])
                if have < wanted[name]:
                    short[name] = (have, wanted[name])
        return TopicsReport(sorted(created), short)
    finally:
        await admin.close()
