"""Rep bodies of ``/v1/reps``."""

from __future__ import annotations

from datetime import datetime, time
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator, model_validator

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


class OutOfOffice(BaseModel):
    """A planned absence: the rep takes no new lead from ``from`` (inclusive) to ``to``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    reason: ShortText | None = None

    _aware = field_validator("start", "end")(_aware)

    @model_validator(mode="after")
    def _ordered(self) -> OutOfOffice:
        if self.end <= self.start:
            raise ValueError("`to` must be after `from`")
        return self

    def stored(self) -> dict[str, str | None]:
        """As kept in ``reps.out_of_office_periods`` and shown by the API."""
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "reason": self.reason}


MAX_PERIODS = 100
Periods = Annotated[list[OutOfOffice], Field(max_length=MAX_PERIODS)]


def _no_overlap(periods: list[OutOfOffice] | None) -> list[OutOfOffice] | None:
    if periods is None:
        return None
    ordered = sorted(periods, key=lambda p: p.start)
    for earlier, later in pairwise(ordered):
        if later.start < earlier.end:
            raise ValueError(
                f"periods overlap: {earlier.start.isoformat()}-{earlier.end.isoformat()} and "
                f"{later.start.isoformat()}-{later.end.isoformat()}"
            )
    return ordered


def _periods_or_flag(value: bool | list[OutOfOffice] | None) -> bool | list[OutOfOffice] | None:
    return _no_overlap(value) if isinstance(value, list) else value


class _OutOfOfficeInput(BaseModel):
    """``out_of_office`` takes the v1 flag (true/false) or, as contract v2 writes it, the
    planned periods ``[{from, to, reason}]`` (then the same as ``out_of_office_periods``)."""

    out_of_office: bool | Periods | None = None
    out_of_office_periods: Periods | None = None

    _checked_flag = field_validator("out_of_office")(_periods_or_flag)
    _checked_periods = field_validator("out_of_office_periods")(_no_overlap)

    @model_validator(mode="after")
    def _periods_given_as_out_of_office(self) -> _OutOfOfficeInput:
        if isinstance(self.out_of_office, list):
            if "out_of_office_periods" in self.model_fields_set:
                raise ValueError(
                    "give the periods as out_of_office or as out_of_office_periods, not both"
                )
            periods = self.out_of_office
            self.__pydantic_fields_set__.discard("out_of_office")
            self.out_of_office = None
            self.__pydantic_fields_set__.discard("out_of_office")
            self.out_of_office_periods = periods
        return self


class RepIn(_OutOfOfficeInput):
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
    out_of_office_until: datetime | None = None
    active: bool = True
    manager: Identifier | None = None

    _aware_until = field_validator("out_of_office_until")(_aware)


class RepPatch(_OutOfOfficeInput):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(default=None, min_length=1)
    email: EmailStr | None = None
    team: ShortText | None = None
    territories: list[ShortText] | None = Field(default=None, max_length=50)
    segments: list[ShortText] | None = Field(default=None, max_length=50)
    capacity_per_day: int | None = Field(default=None, ge=0, le=10_000)
    weight: float | None = Field(default=None, ge=0.01, le=100)
    working_hours: WorkingHours | None = None
    out_of_office_until: datetime | None = None
    active: bool | None = None
    manager: Identifier | None = None

    _aware_until = field_validator("out_of_office_until")(_aware)

    @field_validator(
        "name",
        "email",
        "territories",
        "segments",
        "weight",
        "out_of_office",
        "out_of_office_periods",
        "active",
        mode="before",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Only team, capacity_per_day, working_hours, out_of_office_until and manager may be
        # cleared (periods: an empty list).
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value


# What a rep may change about themselves without a manager.
SELF_SERVICE_FIELDS = frozenset(
    {"working_hours", "out_of_office", "out_of_office_until", "out_of_office_periods"}
)


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
    out_of_office_periods: list[OutOfOffice]
    active: bool
    manager: str | None
    created_at: datetime
    updated_at: datetime

    @field_validator("out_of_office_periods", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        return [] if value is None else value
