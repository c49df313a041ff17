from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from leadflow_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: ClassVar[str] = "lead-intake"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_INTAKE_", extra="ignore")

    form_rate_limit_per_minute: int = 30
    # CSV import: a file over either limit is refused with 413.
    import_max_rows: int = Field(default=1_000_000, ge=1)
    import_max_bytes: int = Field(default=1 << 30, ge=1024)
    # Rows captured per transaction (also rows received per staging transaction). Small
    # enough that a chunk never holds live leads up for long (measured: docs/benchmarks.md).
    import_chunk_rows: int = Field(default=250, ge=1, le=10_000)
    # Files up to this many rows are processed before answering (200 with the result);
    # larger ones, or any with ``Prefer: respond-async``, answer 202 with an import id.
    import_inline_rows: int = Field(default=1000, ge=0)
    # How long an import's worker may be silent before another process takes it over.
    import_lease_s: float = Field(default=30, gt=0)
    # Rejected rows listed with their errors; beyond that they are only counted.
    import_max_listed_rejections: int = Field(default=1000, ge=0)
