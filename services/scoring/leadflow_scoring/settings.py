from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from leadflow_shared.settings import ServiceSettings


class ScoringSettings(ServiceSettings):
    service_name: ClassVar[str] = "scoring"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_SCORING_", extra="ignore")
