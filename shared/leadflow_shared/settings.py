"""Settings common to every service, read from the environment.

Each service subclasses :class:`ServiceSettings` with its own env prefix
(``LEADFLOW_<SERVICE>_``). Cross-cutting variables keep the names of the contract:
``KAFKA_BOOTSTRAP_SERVERS``, ``DATABASE_URL_<SERVICE>``, ``LEADFLOW_JWT_SECRET``.
"""

from __future__ import annotations

import hmac
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "leadflow-dev-secret-change-me-0123456789"  # noqa: S105 - development only


class ServiceSettings(BaseSettings):
    """Base settings; ``service_name`` names the service's topics, group and database."""

    service_name: ClassVar[str] = "service"

    model_config = SettingsConfigDict(extra="ignore")

    environment: str = Field(
        default="development", validation_alias=AliasChoices("LEADFLOW_ENV", "environment")
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "kafka_bootstrap_servers"),
    )
    # The local Tansu broker answers an empty fetch only when this wait expires, so the
    # embedded default keeps it low; against Apache Kafka leave it at Kafka's 500 ms.
    kafka_fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        le=60_000,
        validation_alias=AliasChoices("KAFKA_FETCH_MAX_WAIT_MS", "kafka_fetch_max_wait_ms"),
    )
    # After a few seconds without records the consumers switch to this longer wait (the
    # local broker's empty fetches cost CPU); unset: always the wait above.
    kafka_fetch_idle_wait_ms: int | None = Field(
        default=None,
        ge=1,
        le=60_000,
        validation_alias=AliasChoices("KAFKA_FETCH_IDLE_WAIT_MS", "kafka_fetch_idle_wait_ms"),
    )
    # Set by the launcher for a broker that keeps topics in memory: a new value means the
    # broker lost what it held, and the outbox relay republishes what it sent since the
    # previous epoch began (docs/RELIABILITY.md). Unset: a durable broker, nothing to do.
    broker_epoch: str = Field(
        default="",
        max_length=64,
        validation_alias=AliasChoices("LEADFLOW_BROKER_EPOCH", "broker_epoch"),
    )
    kafka_enabled: bool = Field(
        default=True, validation_alias=AliasChoices("LEADFLOW_KAFKA_ENABLED", "kafka_enabled")
    )
    jwt_secret: str = Field(
        default=DEV_JWT_SECRET,
        validation_alias=AliasChoices("LEADFLOW_JWT_SECRET", "jwt_secret"),
    )
    data_dir: Path = Field(
        default=Path("var"), validation_alias=AliasChoices("LEADFLOW_DATA_DIR", "data_dir")
    )
    database_url: str = ""
    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("LEADFLOW_LOG_LEVEL", "log_level")
    )
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_retry_base_ms: int = Field(default=100, ge=1, le=60_000)
    # Events handled in one transaction at most (a fetched batch is split beyond this).
    consumer_max_batch: int = Field(default=500, ge=1, le=5000)
    # Bulk-lane events (imports and what they cause) handled per fetched batch at most, so a
    # live event never waits behind more than this many of them.
    consumer_bulk_per_batch: int = Field(default=100, ge=1, le=5000)
    # Records of bulk topics (leads.imported) admitted per second: the pace at which an
    # import enters the pipeline, kept below what the whole pipeline can absorb beside
    # live traffic (docs/benchmarks.md). 0: no cap.
    consumer_bulk_rate_per_s: float = Field(default=100, ge=0, le=1_000_000)
    consumer_commit_interval_s: float = Field(default=0.2, ge=0, le=60)
    outbox_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Sent outbox rows are kept a day; processed-event ids longer than Kafka's retention.
    outbox_retention_hours: float = Field(default=24, gt=0, le=24 * 365)
    processed_retention_days: float = Field(default=14, gt=0, le=3650)

    def __init__(self, **values: Any) -> None:
        if "database_url" not in values:
            env_name = f"DATABASE_URL_{self.service_name.upper().replace('-', '_')}"
            if os.environ.get(env_name):
                values["database_url"] = os.environ[env_name]
        super().__init__(**values)

    @model_validator(mode="after")
    def _defaults_and_safety(self) -> ServiceSettings:
        if not self.database_url:
            file = self.data_dir / f"{self.service_name}.sqlite3"
            self.database_url = f"sqlite+aiosqlite:///{file}"
        if self.environment != "development" and hmac.compare_digest(
            self.jwt_secret.encode(), DEV_JWT_SECRET.encode()
        ):
            raise ValueError(
                "LEADFLOW_JWT_SECRET is the development placeholder; set a real secret "
                "(32+ random bytes) outside LEADFLOW_ENV=development"
            )
        if len(self.jwt_secret) < 32:
            raise ValueError("LEADFLOW_JWT_SECRET must be at least 32 characters")
        return self

    @property
    def dlq_topic(self) -> str:
        return f"{self.service_name}.dlq"
