"""Settings for every Dripline process, read from DRIPLINE_* environment variables.

When `database_url` or `kafka_bootstrap` is set, that part is external and nothing embedded
starts for it; otherwise the embedded PostgreSQL and Tansu broker are used on local ports.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Self
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
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
    embedded_postgres_durable: bool = Field(
        default=True,
        description="fsync, full_page_writes and synchronous_commit of the embedded PostgreSQL; "
        "off is faster and loses data to an OS crash or power cut (tests, benchmarks).",
    )
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
    relay_lease_s: float = Field(
        default=10.0,
        gt=0,
        description="How long the outbox relay's leader may go without renewing its lease "
        "before another service takes over publishing (a paused or cut-off leader).",
    )
    relay_loss_check_s: float = Field(
        default=5.0,
        gt=0,
        description="How often the relay's leader checks that the broker still has what it "
        "acknowledged (a new cluster id, partitions that went back) and publishes it again.",
    )
    lease_s: float = Field(
        default=60.0, gt=0, description="How long a claimed execution is the sender's alone."
    )
    api_max_concurrent_requests: int = Field(
        default=32,
        gt=0,
        description="Requests one API process serves at once; more wait up to "
        "api_queue_wait_s for a place, then get 503 overloaded with Retry-After. Beyond a few "
        "times db_pool_max, the requests let in only queue for a connection (docs/deploy.md).",
    )
    api_queue_wait_s: float = Field(
        default=0.25,
        ge=0,
        description="How long a request beyond api_max_concurrent_requests waits for a place.",
    )
    dispatch_max_in_flight: int = Field(
        default=5000,
        gt=0,
        description="How many executions may be claimed and not yet stepped by a sender at "
        "once; dispatch claims no more until the senders catch up, so a backlog drains at "
        "their pace and no lease runs out unused.",
    )
    dispatch_interval_s: float = Field(
        default=0.2,
        gt=0,
        description="How often the scheduler claims due executions (at most sweep_interval_s): "
        "what it adds to the lateness of a waiting execution's next step.",
    )
    health_check_interval_s: float = Field(
        default=300.0, gt=0, description="How often each Telegram account is probed."
    )
    sweep_interval_s: float = Field(
        default=1.0, gt=0, description="How often the scheduler's periodic sweeps run."
    )
    missed_run_grace_s: float = Field(
        default=300.0,
        gt=0,
        description="How late a scheduled run may still start; later, it was missed (the "
        "scheduler was down) and waits for a person to run it now or reschedule it.",
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
    max_bulk_import_bytes: int = Field(
        default=2 * 1024 * 1024 * 1024,
        ge=1024,
        description="The largest upload POST /imports streams in (413 above it); it is never "
        "held in memory whole.",
    )
    max_attachment_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="The largest file POST /attachments stores (413 attachment_too_large above "
        "it); photos are further limited to Telegram's 10 MB.",
    )
    command_wait_s: float = Field(
        default=5.0, description="How long a lifecycle call waits for its outcome before 202."
    )
    login_wait_s: float = Field(
        default=30.0,
        description="How long a login step or session import waits for the sender's answer "
        "before 202 (each step is a round trip to Telegram).",
    )
    command_recovery_after_s: float = Field(
        default=30.0,
        gt=0,
        description="How long after the relay sent a campaign command the scheduler applies it "
        "from its outbox record, if its message has not arrived (a broker lost it).",
    )
    stats_reconcile_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="How often the stats service recounts the campaigns changed since its last "
        "reconciliation and repairs figures that drifted (it also does at start-up).",
    )
    stats_reconcile_settle_s: float = Field(
        default=10.0,
        ge=0,
        description="How long a difference from the recount must last before the stats "
        "service's reconciliation repairs it (longer than the statistics' lag).",
    )
    session_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts Telegram session strings at rest; "
        "when unset, it is read from session_key_file.",
    )
    session_key_file: Path | None = Field(
        default=None,
        description="A file holding the session key, so it can live apart from the data; "
        "`dripline run` creates it (0600), by default as session.key in the state directory.",
    )
    telegram_api_id: int | None = Field(
        default=None, description="Telegram API id (my.telegram.org) for Telethon accounts."
    )
    telegram_api_hash: SecretStr | None = Field(
        default=None, description="Telegram API hash that goes with telegram_api_id."
    )
    telegram_login_endpoint: str | None = Field(
        default=None,
        pattern=r"^[1-5]:[0-9.]+:[0-9]{1,5}$",
        description="Tests only: `dc:host:port` a new login (and an imported session without an "
        "address) connects to instead of Telegram's own data centres.",
    )
    telegram_rsa_key_file: Path | None = Field(
        default=None,
        description="Tests only: a PEM file of server RSA public keys the sender trusts beside "
        "Telegram's (the test server's key, for a login from an empty session).",
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

    @model_validator(mode="after")
    def _read_session_key_file(self) -> Self:
        """A key given by itself wins; a named file must hold one (an empty file would leave
        the sessions unreadable, so it is an error, not "no key"). A file that does not exist
        yet means no key: `dripline run` creates it before its services start."""
        path = self.session_key_file
        if self.session_key is None and path is not None and path.exists():
            key = path.read_text().strip()
            if not key:
                raise ValueError(f"the session key file {path} is empty")
            self.session_key = SecretStr(key)
        return self

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
    def embedded_postgres_password_file(self) -> Path:
        """Written by the embedded PostgreSQL's first start (dripline/infra.py)."""
        return self.state_dir / "postgres" / "password"

    @property
    def dsn(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return embedded_dsn(
            self.embedded_postgres_port,
            self.embedded_database,
            self.embedded_postgres_password_file,
        )

    @property
    def dsn_for_display(self) -> str:
        """The DSN with its password masked, for terminals and logs."""
        parts = urlsplit(self.dsn)
        if parts.password is None:
            return self.dsn
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))

    @property
    def bootstrap_servers(self) -> str:
        if self.kafka_bootstrap is not None:
            return self.kafka_bootstrap
        return f"127.0.0.1:{self.embedded_kafka_port}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}dripline.{service}"


def embedded_dsn(port: int, database: str, password_file: Path) -> str:
    """The embedded server's DSN: every process reads the password from the same file. Without
    the file (a server that still trusts local connections) the DSN carries no password."""
    credentials = "postgres"
    if password_file.exists():
        credentials += ":" + quote(password_file.read_text().strip(), safe="")
    return f"postgresql://{credentials}@127.0.0.1:{port}/{database}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
