from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from leadflow_shared.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    service_name: ClassVar[str] = "routing"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_ROUTING_", extra="ignore")

    # How often the durable timer looks for SLA breaches and leads waiting for a free rep.
    timer_interval_s: float = Field(default=5.0, gt=0, le=3600)
