"""Request and response bodies of the webhooks HTTP API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from leadflow_shared.validation import LongText
from leadflow_webhooks.event_filter import KNOWN_EVENT_TYPES, is_known_pattern

EventPattern = Annotated[str, Field(min_length=1, max_length=100)]


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, Field(min_length=1, max_length=2000)]
    event_types: list[EventPattern] = Field(
        min_length=1,
        max_length=50,
        description="Event types, '*' for every event, or a prefix wildcard such as 'lead.*'.",
    )
    description: LongText | None = None

    @field_validator("event_types")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [pattern for pattern in value if not is_known_pattern(pattern)]
        if unknown:
            raise ValueError(
                f"unknown event types {', '.join(sorted(set(unknown)))}; use '*', a prefix "
                f"wildcard such as 'lead.*', or one of {', '.join(sorted(KNOWN_EVENT_TYPES))}"
            )
        return list(dict.fromkeys(value))


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    owner: str
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    """Only this response carries the signing secret; store it now."""

    secret: str


class AttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str
    subscription_id: str
    event_id: str
    event_type: str
    lead_id: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    payload_erased: bool


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]
