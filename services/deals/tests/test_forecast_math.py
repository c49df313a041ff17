"""The forecast is a pure function: these tests use plain data, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from leadflow_deals.forecast import DealFacts, QuotaFacts, compute_forecast
from leadflow_deals.periods import Period
from leadflow_shared.events.schemas import StageId

Q4 = Period.parse("2026-Q4")
CREATED = datetime(2026, 9, 1, tzinfo=UTC)


def deal(
    stage: StageId,
    amount: str | None,
    *,
    owner: str = "ae-1",
    close_date: date | None = date(2026, 11, 15),
    closed_at: datetime | None = None,
    currency: str = "USD",
    created_at: datetime = CREATED,
) -> DealFacts:
    return DealFacts(
        owner=owner,
        stage=stage,
        amount=None if amount is None else Decimal(amount),
        currency=currency,
        close_date=close_date,
        created_at=created_at,
        closed_at=closed_at,
    )


def quota(period: str, amount: str, owner: str = "ae-1", currency: str = "USD") -> QuotaFacts:
    return QuotaFacts(
        owner=owner, period=Period.parse(period), amount=Decimal(amount), currency=currency
    )


def won(
    amount: str, on: datetime, *, currency: str = "USD", created_at: datetime = CREATED
) -> DealFacts:
    return deal(
        "closed_won",
        amount,
        closed_at=on,
        close_date=on.date(),
        currency=currency,
        created_at=created_at,
    )


def test_pipeline_weighted_pipeline_and_commit_of_open_deals_closing_in_the_period() -> None:
    f = compute_forecast(
        Q4,
        [
            deal("discovery", "1000.00"),
            deal("proposal", "2000.00"),
            deal("negotiation", "4000.00"),
            deal("negotiation", "8000.00", close_date=date(2027, 1, 2)),  # next quarter
        ],
        [],
        currency="USD",
    )
    assert f.pipeline == Decimal("7000")
    assert f.weighted_pipeline == Decimal("100") + Decimal("1000") + Decimal("3000")
    assert f.commit == Decimal("4000")
    assert f.deals_open == 3


def test_open_deals_without_close_date_are_counted_apart_not_in_pipeline() -> None:
    f = compute_forecast(
        Q4, [deal("demo", "500", close_date=None), deal("demo", None)], [], currency="USD"
    )
    assert f.pipeline == Decimal("0")  # the dated one has no amount yet
    assert f.deals_open == 1 and f.deals_open_undated == 1


def test_closed_won_attainment_win_rate_and_cycle_count_deals_closed_in_the_period() -> None:
    f = compute_forecast(
        Q4,
        [
            won("3000.00", datetime(2026, 10, 11, tzinfo=UTC)),  # 40 days after creation
            won("1000.00", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), created_at=CREATED),
            won("9999.00", datetime(2026, 9, 30, 23, 59, tzinfo=UTC)),  # Q3: not counted
            deal("closed_lost", None, closed_at=datetime(2026, 11, 2, tzinfo=UTC)),
            deal("closed_lost", "10", closed_at=datetime(2027, 1, 1, tzinfo=UTC)),  # Q1
        ],
        [quota("2026-Q4", "8000")],
        currency="USD",
    )
    assert f.closed_won == Decimal("4000")
    assert f.quota == Decimal("8000")
    assert f.attainment == Decimal("0.5")
    assert (f.deals_won, f.deals_lost) == (2, 1)
    assert f.win_rate == Decimal("0.6667")
    # (40 + 121.999...) / 2 days
    assert f.avg_sales_cycle_days == Decimal("81.0")


def test_quarter_quota_adds_month_quotas_and_quarter_quotas_of_that_quarter_only() -> None:
    quotas = [
        quota("2026-10", "100"),
        quota("2026-11", "200"),
        quota("2026-12", "300"),
        quota("2026-Q4", "1000"),
        quota("2026-09", "5000"),  # Q3
        quota("2027-Q4", "7000"),  # another year
    ]
    assert compute_forecast(Q4, [], quotas, currency="USD").quota == Decimal("1600")
    month = compute_forecast(Period.parse("2026-11"), [], quotas, currency="USD")
    assert month.quota == Decimal("200")


def test_without_quota_attainment_is_null_and_without_closes_win_rate_is_null() -> None:
    f = compute_forecast(Q4, [won("10", datetime(2026, 11, 1, tzinfo=UTC))], [], currency="USD")
    assert f.quota is None and f.attainment is None
    assert f.win_rate == Decimal("1")
    empty = compute_forecast(Q4, [], [quota("2026-Q4", "0")], currency="USD")
    assert empty.quota == Decimal("0") and empty.attainment is None
    assert empty.win_rate is None and empty.avg_sales_cycle_days is None


def test_owner_filter_limits_deals_and_quotas_and_everyone_sums_all() -> None:
    deals = [deal("demo", "100", owner="ae-1"), deal("demo", "50", owner="ae-2")]
    quotas = [quota("2026-Q4", "1000", "ae-1"), quota("2026-Q4", "500", "ae-2")]
    mine = compute_forecast(Q4, deals, quotas, currency="USD", owner="ae-1")
    everyone = compute_forecast(Q4, deals, quotas, currency="USD")
    assert (mine.pipeline, mine.quota, mine.owner) == (Decimal("100"), Decimal("1000"), "ae-1")
    assert (everyone.pipeline, everyone.quota, everyone.owner) == (
        Decimal("150"),
        Decimal("1500"),
        None,
    )


def test_money_in_other_currencies_is_left_out_of_sums_but_counted() -> None:
    f = compute_forecast(
        Q4,
        [
            deal("demo", "100"),
            deal("demo", "70", currency="EUR"),
            won("30", datetime(2026, 11, 1, tzinfo=UTC), currency="EUR"),
        ],
        [quota("2026-Q4", "999", currency="EUR")],
        currency="USD",
    )
    assert f.pipeline == Decimal("100") and f.closed_won == Decimal("0")
    assert f.quota is None
    assert (f.deals_open, f.deals_won, f.deals_other_currency) == (2, 1, 2)
