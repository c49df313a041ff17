from __future__ import annotations

from datetime import date

import pytest

from leadflow_deals.periods import Period, PeriodError


def test_month_covers_its_calendar_days() -> None:
    period = Period.parse("2028-02")
    assert (period.first_day, period.last_day) == (date(2028, 2, 1), date(2028, 2, 29))
    assert str(period) == "2028-02"


def test_fourth_quarter_ends_on_new_years_eve() -> None:
    period = Period.parse("2026-q4")
    assert str(period) == "2026-Q4"
    assert (period.first_day, period.last_day) == (date(2026, 10, 1), date(2026, 12, 31))
    assert period.contains(date(2026, 12, 31)) and not period.contains(date(2027, 1, 1))


def test_quarter_quota_is_made_of_its_own_and_its_months_quotas() -> None:
    assert [str(p) for p in Period.parse("2026-Q2").quota_periods()] == [
        "2026-Q2",
        "2026-04",
        "2026-05",
        "2026-06",
    ]
    assert [str(p) for p in Period.parse("2026-05").quota_periods()] == ["2026-05"]


@pytest.mark.parametrize(
    "text",
    ["2026-13", "2026-00", "2026-Q5", "2026-Q0", "2026-1", "26-11", "2026/11", "", "0000-01"],
)
def test_anything_but_a_month_or_quarter_is_refused(text: str) -> None:
    with pytest.raises(PeriodError):
        Period.parse(text)
