"""DRIPLINE_TEST_CONTAINERS=1: Apache Kafka and PostgreSQL from testcontainers.

This mode needs a Docker engine, which the project's development machines do not have; it is
kept small on purpose and is not part of CI. Install with `pip install -e '.[containers]'`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from tests.support import Infra


@contextmanager
def container_infra() -> Iterator[Infra]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with (
        PostgresContainer("postgres:17", driver=None) as postgres,
        KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft() as kafka,
    ):
        yield Infra(postgres.get_connection_url(), kafka.get_bootstrap_server())
