"""Settings for every Dripline process, read from DRIPLINE_* environment variables.

When `database_url` or `kafka_bootstrap` is set, that part is external and nothing embedded
starts for it; otherwise the embedded PostgreSQL and Tansu broker are used on local ports.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIPLINE_", extra="ignore")

    state_dir: Path = Field(
        default=Path(".dripline"),
        description="Project-local directory for embedded PostgreSQL data, broker logs, pids.",
    )
    database_url: str | None = Field(default=None, description="External PostgreSQL URL.")
    kafka_bootstrap: str | None = Field(
        default=None, description="External Kafka bootstrap servers."
    )

    embedded_postgres_port: int = 54329
    embedded_database: str = "dripline"
    embedded_kafka_port: int = 19092

    topic_prefix: str = Field(
        default="", description="Prepended to every topic and consumer group (test isolation)."
    )
    create_topics: bool = Field(default=True, description="Create missing topics at start-up.")
    # Tansu holds a group join for half the session timeout, so keep it short by default.
    kafka_session_timeout_ms: int = 6000
    # Records a consumer takes per batch (one transaction): larger batches amortize a batch's
    # fixed cost (the inbox, the commit) when a topic runs hot.
    kafka_max_records: int = Field(default=500, ge=1, le=10_000)
    # How long a fetch may wait on the broker for new records. It bounds how late a consumer
    # sees a record when the broker answers a fetch only at its deadline (Tansu does), so it is
    # most of the statistics' freshness and of an execution's wait between steps.
    kafka_fetch_max_wait_ms: int = Field(default=100, ge=1, le=10_000)
    kafka_heartbeat_interval_ms: int = 1000

    http_host: str = "127.0.0.1"
    api_port: int = 8000
    scheduler_port: int = 8101
    sender_port: int = 8102
    stats_port: int = 8103

    db_pool_min: int = 1
    db_pool_max: int = 10
    outbox_batch_size: int = 1000
    outbox_poll_interval_s: float = 1.0
    outbox_retention_s: float = Field(
        default=3600.0, gt=0, description="How long published outbox records are kept."
    )
    inbox_retention_s: float = Field(
        default=7 * 86400.0, gt=0, description="How long consumed message ids are remembered."
    )
    lease_s: float = Field(
        default=60.0, gt=0, description="How long a claimed execution is the sender's alone."
    )
    health_check_interval_s: float = Field(
        default=300.0, gt=0, description="How often each Telegram account is probed."
    )
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="How often the scheduler's periodic sweeps run."
    )
    bulk_batch_size: int = Field(
        default=500, gt=0, description="Campaigns a bulk operation changes per transaction."
    )
    bulk_workers: int = Field(
        default=2, ge=1, description="Batches of bulk operations a scheduler applies at once."
    )
    bulk_rate_limit: int = Field(
        default=10, ge=1, description="Bulk requests a user may make per bulk_rate_window_s."
    )
    bulk_rate_window_s: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="The largest request body the API reads (413 above it); imports excepted.",
    )
    max_import_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1024,
        description="The largest CSV body POST /contacts/import reads (413 above it).",
    )
    command_wait_s: float = Field(
        default=5.0, description="How long a lifecycle call waits for its outcome before 202."
    )
    session_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts Telegram session strings at rest; "
        "`dripline run` creates one in the state directory.",
    )
    telegram_api_id: int | None = Field(
        default=None, description="Telegram API id (my.telegram.org) for Telethon accounts."
    )
    telegram_api_hash: SecretStr | None = Field(
        default=None, description="Telegram API hash that goes with telegram_api_id."
    )
    telegram_reconcile_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="How often the sender reads recent dialogs for replies it may have missed.",
    )
    clock_file: Path | None = Field(
        default=None,
        description="Tests only: read the time from this file (shared/file_clock.py).",
    )
    contact_restore_days: int = Field(
        default=30, ge=1, description="How long deleted contacts can be restored."
    )
    export_retention_days: int = Field(default=30, ge=1)
    log_level: str = "INFO"

    @property
    def telethon_ready(self) -> str | None:
        """Why Telethon accounts cannot be used here, or None when they can."""
        missing = [
            name
            for name, value in (
                ("DRIPLINE_SESSION_KEY", self.session_key),
                ("DRIPLINE_TELEGRAM_API_ID", self.telegram_api_id),
                ("DRIPLINE_TELEGRAM_API_HASH", self.telegram_api_hash),
            )
            if value is None
        ]
        return f"not configured: {', '.join(missing)}" if missing else None

    @property
    def embedded_postgres(self) -> bool:
        return self.database_url is None

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return (
            f"postgresql://postgres@127.0.0.1:{self.embedded_postgres_port}/"
            f"{self.embedded_database}"
        )

    @property
    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap is not None:
            return self.kafka_bootstrap
        return f"127.0.0.1:{self.embedded_kafka_port}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}dripline.{service}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
