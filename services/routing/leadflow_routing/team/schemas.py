"""Rep bodies of ``/v1/reps``."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator

from leadflow_shared.validation import Identifier, Name, ShortText

RepRole = Literal["sdr", "ae", "am", "manager"]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ZONES = available_timezones()


def _weekdays() -> list[Weekday]:
    return ["mon", "tue", "wed", "thu", "fri"]


class WorkingHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tz: str = "UTC"
    days: list[Weekday] = Field(default_factory=_weekdays, min_length=1, max_length=7)
    start: str = "09:00"
    end: str = "17:00"

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _ZONES:
            raise ValueError("must be an IANA time zone such as Europe/Berlin")
        ZoneInfo(value)
        return value

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        try:
            time.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("must be a 24-hour time HH:MM") from exc
        return value


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must carry a timezone offset")
    return value


class RepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Identifier
    name: Name = Field(min_length=1)
    email: EmailStr
    role: RepRole
    team: ShortText | None = None
    territories: list[ShortText] = Field(default_factory=list, max_length=50)
    segments: list[ShortText] = Field(default_factory=list, max_length=50)
    capacity_per_day: int | None = Field(default=None, ge=0, le=10_000)
    weight: float = Field(default=1.0, ge=0.01, le=100)
    working_hours: WorkingHours | None = None
    out_of_office: bool = False
    out_of_office_until: datetime | None = None
    active: bool = True

    _aware_until = field_validator("out_of_office_until")(_aware)


class RepPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(default=None, min_length=1)
    email: EmailStr | None = None
    team: ShortText | None = None
    territories: list[ShortText] | None = Field(default=None, max_length=50)
    segments: list[ShortText] | None = Field(default=None, max_length=50)
    capacity_per_day: int | None = Field(default=None, ge=0, le=10_000)
    weight: float | None = Field(default=None, ge=0.01, le=100)
    working_hours: WorkingHours | None = None
    out_of_office: bool | None = None
    out_of_office_until: datetime | None = None
    active: bool | None = None

    _aware_until = field_validator("out_of_office_until")(_aware)

    @field_validator(
        "name",
        "email",
        "territories",
        "segments",
        "weight",
        "out_of_office",
        "active",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only team, capacity_per_day, working_hours and out_of_office_until may be cleared.
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


# What a rep may change about themselves without a manager.
SELF_SERVICE_FIELDS = frozenset({"working_hours", "out_of_office", "out_of_office_until"})


class RepOut(BaseModel):
    id: str
    name: str
    email: str
    role: str
    team: str | None
    territories: list[str]
    segments: list[str]
    capacity_per_day: int | None
    weight: float
    working_hours: WorkingHours | None
    out_of_office: bool
    out_of_office_until: datetime | None
    active: bool
    created_at: datetime
    updated_at: datetime
