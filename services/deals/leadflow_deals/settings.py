from __future__ import annotations

from typing import ClassVar

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from leadflow_deals.money import CURRENCIES
from leadflow_shared.settings import ServiceSettings


class DealsSettings(ServiceSettings):
    service_name: ClassVar[str] = "deals"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_DEALS_", extra="ignore")

    # New deals and quotas are in this currency unless told otherwise; the forecast sums
    # amounts in it by default (there are no exchange rates in leadflow).
    default_currency: str = "USD"

    @field_validator("default_currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        code = value.strip().upper()
        if code not in CURRENCIES:
            raise ValueError(f"default_currency must be one of {', '.join(sorted(CURRENCIES))}")
        return code
