from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from leadflow_shared.settings import ServiceSettings

SERVICES = ("lead-intake", "scoring", "routing", "deals", "webhooks", "console")


class ConsoleSettings(ServiceSettings):
    service_name: ClassVar[str] = "console"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_CONSOLE_", extra="ignore")

    # Consumer groups whose lag is shown; each service's group id is its name.
    consumer_groups: list[str] = Field(default_factory=lambda: list(SERVICES))
    # Services whose `<service>.dlq` topic is shown (dead letters).
    dlq_services: list[str] = Field(default_factory=lambda: list(SERVICES))
    # The sampler reads end offsets this often and keeps enough history for the rate.
    sample_interval_s: float = Field(default=3.0, gt=0, le=300)
    rate_window_s: float = Field(default=15.0, gt=0, le=3600)
    # Every broker call is bounded by this; a slower broker answers 503, never a hang.
    broker_timeout_s: float = Field(default=3.0, gt=0, le=120)
