"""Quota and forecast periods: a month (``2026-11``) or a quarter (``2026-Q4``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
MIN_YEAR, MAX_YEAR = 1970, 9998


class PeriodError(ValueError):
    """Text that is not a period."""


@dataclass(frozen=True, order=True)
class Period:
    year: int
    kind: Literal["month", "quarter"]
    number: int  # month 1..12 or quarter 1..4

    @classmethod
    def parse(cls, text: str) -> Period:
        """``YYYY-MM`` or ``YYYY-Qn``; raises :class:`PeriodError` otherwise."""
        value = text.strip().upper()
        if match := _MONTH.match(value):
            period = cls(int(match.group(1)), "month", int(match.group(2)))
        elif match := _QUARTER.match(value):
            period = cls(int(match.group(1)), "quarter", int(match.group(2)))
        else:
            raise PeriodError("must be a month like 2026-11 or a quarter like 2026-Q4")
        if not MIN_YEAR <= period.year <= MAX_YEAR:
            raise PeriodError(f"year must be between {MIN_YEAR} and {MAX_YEAR}")
        return period

    def __str__(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.number:02d}"
        return f"{self.year}-Q{self.number}"

    @property
    def first_day(self) -> date:
        month = self.number if self.kind == "month" else 3 * self.number - 2
        return date(self.year, month, 1)

    @property
    def last_day(self) -> date:
        months = 1 if self.kind == "month" else 3
        month0 = self.first_day.month - 1 + months
        following = date(self.year + month0 // 12, month0 % 12 + 1, 1)
        return following - timedelta(days=1)

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def months(self) -> tuple[Period, ...]:
        if self.kind == "month":
            return (self,)
        first = 3 * self.number - 2
        return tuple(Period(self.year, "month", m) for m in range(first, first + 3))

    def quota_periods(self) -> tuple[Period, ...]:
        """Whose quotas make up this period's quota: a quarter adds its own quota and those
        of its three months; a month has only its own (a quarter quota is not split)."""
        return self.months() if self.kind == "month" else (self, *self.months())
