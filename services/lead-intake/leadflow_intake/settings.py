from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from leadflow_shared.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    service_name: ClassVar[str] = "lead-intake"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_INTAKE_", extra="ignore")

    form_rate_limit_per_minute: int = 30
    import_max_rows: int = 10_000
