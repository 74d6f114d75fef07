"""Topic creation, apart from the rest of the Kafka plumbing so that the outbox relay (which
the consumers import) can recreate the topics a broker lost."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.messaging.topics import all_topic_partitions, physical_name

_TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(bootstrap: str, prefix: str) -> list[str]:
    """Create every topic that is missing, with its partition count; returns the ones created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = {
            physical_name(name, prefix): partitions
            for name, partitions in all_topic_partitions().items()
        }
        missing = [NewTopic(n, p, 1) for n, p in wanted.items() if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        created = []
        for name, code, message in (e[:3] for e in response.topic_errors):
            if code == 0:
                created.append(name)
            elif code != _TOPIC_ALREADY_EXISTS:  # another process won the race: fine
                raise RuntimeError(f"could not create topic {name}: {code} {message}")
        return created
    finally:
        await admin.close()
