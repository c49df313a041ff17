from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Annotated, Any, ClassVar

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from leadflow_shared.settings import ServiceSettings
from leadflow_webhooks.secret_box import DEV_SECRETS_KEY, SecretBox, valid_key

# Standard Webhooks' recommended schedule: after the first attempt, retry after 5 s, 5 min,
# 30 min, 2 h, 5 h, 10 h and 10 h (eight attempts in all).
STANDARD_RETRY_SCHEDULE_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)


def _list_from_env(value: Any) -> Any:
    """Accept a JSON list (``[0.1, 0.2]``) or a comma-separated string (``0.1,0.2``)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [part.strip() for part in text.split(",") if part.strip()]


class WebhooksSettings(ServiceSettings):
    service_name: ClassVar[str] = "webhooks"
    model_config = SettingsConfigDict(env_prefix="LEADFLOW_WEBHOOKS_", extra="ignore")

    # Per-attempt total time (connect, send, wait for the status line).
    delivery_timeout_s: float = Field(default=10.0, gt=0, le=300)
    retry_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(STANDARD_RETRY_SCHEDULE_S), max_length=50
    )
    # SSRF guard: private, loopback, link-local, multicast, reserved and unspecified targets
    # are refused unless allowed here (for local development and tests).
    allow_private_targets: bool = False
    allowed_cidrs: Annotated[list[str], NoDecode] = Field(default_factory=list, max_length=100)
    max_concurrent_deliveries: int = Field(default=20, ge=1, le=1000)
    # One slow endpoint occupies at most this many of the concurrent slots.
    max_concurrent_per_subscription: int = Field(default=4, ge=1, le=100)
    # The worker is woken on commit; this is only the fallback poll.
    delivery_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Signing secrets are stored encrypted with this Fernet key; old keys still decrypt
    # (rotation: make the new key current, list the old one here, restart).
    secrets_key: str = Field(
        default=DEV_SECRETS_KEY,
        validation_alias=AliasChoices(
            "LEADFLOW_WEBHOOKS_SECRETS_KEY", "LEADFLOW_SECRETS_KEY", "secrets_key"
        ),
    )
    secrets_old_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        max_length=20,
        validation_alias=AliasChoices(
            "LEADFLOW_WEBHOOKS_SECRETS_OLD_KEYS", "LEADFLOW_SECRETS_OLD_KEYS", "secrets_old_keys"
        ),
    )

    @field_validator("retry_schedule_s", mode="before")
    @classmethod
    def _parse_schedule(cls, value: Any) -> Any:
        return _list_from_env(value)

    @field_validator("retry_schedule_s")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if any(delay < 0 or delay > 7 * 86400 for delay in value):
            raise ValueError("each retry delay must be between 0 and 604800 seconds")
        return value

    @field_validator("secrets_key")
    @classmethod
    def _fernet_key(cls, value: str) -> str:
        return valid_key(value)

    @field_validator("secrets_old_keys", mode="before")
    @classmethod
    def _parse_old_keys(cls, value: Any) -> Any:
        return _list_from_env(value)

    @field_validator("secrets_old_keys")
    @classmethod
    def _fernet_keys(cls, value: list[str]) -> list[str]:
        return [valid_key(key) for key in value]

    @model_validator(mode="after")
    def _no_dev_key_outside_development(self) -> WebhooksSettings:
        # As for LEADFLOW_JWT_SECRET: the placeholder is refused outside development.
        if self.environment != "development" and hmac.compare_digest(
            self.secrets_key.encode(), DEV_SECRETS_KEY.encode()
        ):
            raise ValueError(
                "LEADFLOW_SECRETS_KEY is the development placeholder; set a real Fernet key "
                "outside LEADFLOW_ENV=development"
            )
        return self

    def secret_box(self) -> SecretBox:
        return SecretBox(self.secrets_key, self.secrets_old_keys)

    @field_validator("allowed_cidrs", mode="before")
    @classmethod
    def _parse_cidrs(cls, value: Any) -> Any:
        return _list_from_env(value)

    @field_validator("allowed_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not a CIDR such as 10.0.0.0/8") from exc
        return value
