"""The forecast: a pure function of deals and quotas, no database.

Definitions (all for one period, one owner or everyone, one currency):

- ``pipeline``: the amounts of *open* deals whose expected ``close_date`` lies in the
  period. Open deals without a close date are in no period's pipeline, because nobody has
  said when they will close; they are counted in ``deals_open_undated`` so they are not
  invisible. Open deals with no amount count as zero.
- ``weighted_pipeline``: each pipeline amount times its stage probability.
- ``commit``: the pipeline amounts of deals in ``negotiation``.
- ``closed_won``: amounts of deals won in the period (by the UTC date they were closed).
- ``quota``: the sum of the owner's (or everyone's) quotas for the period; see
  :meth:`Period.quota_periods`. ``None`` when no quota is set.
- ``attainment``: ``closed_won / quota``; ``None`` without a (non-zero) quota.
- ``win_rate``: won / (won + lost) among deals closed in the period; ``None`` if none.
- ``avg_sales_cycle_days``: mean days from creation to close of deals won in the period.

Money sums count only deals and quotas in the forecast's currency (leadflow has no
exchange rates); ``deals_other_currency`` says how many deals that left out. Counts, win
rate and sales cycle count every deal, whatever its currency.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from leadflow_deals.periods import Period
from leadflow_deals.stages import PROBABILITY, is_open
from leadflow_shared.events.schemas import StageId

ZERO = Decimal(0)
RATIO = Decimal("0.0001")
TENTH = Decimal("0.1")
SECONDS_PER_DAY = Decimal(86_400)


@dataclass(frozen=True)
class DealFacts:
    owner: str
    stage: StageId
    amount: Decimal | None
    currency: str
    close_date: date | None
    created_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True)
class QuotaFacts:
    owner: str
    period: Period
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Forecast:
    period: Period
    owner: str | None
    currency: str
    quota: Decimal | None
    pipeline: Decimal
    weighted_pipeline: Decimal
    commit: Decimal
    closed_won: Decimal
    attainment: Decimal | None
    win_rate: Decimal | None
    avg_sales_cycle_days: Decimal | None
    deals_open: int
    deals_won: int
    deals_lost: int
    deals_open_undated: int
    deals_other_currency: int


def compute_forecast(
    period: Period,
    deals: Iterable[DealFacts],
    quotas: Iterable[QuotaFacts],
    *,
    currency: str,
    owner: str | None = None,
) -> Forecast:
    """Forecast ``period`` for ``owner`` (``None``: everyone) in ``currency``."""
    pipeline = weighted = commit = won_amount = ZERO
    open_count = undated = won_count = lost_count = other_currency = 0
    cycle_days: list[Decimal] = []
    for deal in deals:
        if owner is not None and deal.owner != owner:
            continue
        in_currency = deal.currency == currency
        amount = deal.amount or ZERO
        if is_open(deal.stage):
            if deal.close_date is None:
                undated += 1
                continue
            if not period.contains(deal.close_date):
                continue
            open_count += 1
            if not in_currency:
                other_currency += 1
                continue
            pipeline += amount
            weighted += amount * PROBABILITY[deal.stage] / 100
            if deal.stage == "negotiation":
                commit += amount
            continue
        if deal.closed_at is None or not period.contains(deal.closed_at.date()):
            continue
        if deal.stage == "closed_lost":
            lost_count += 1
            continue
        won_count += 1
        cycle_days.append(
            Decimal((deal.closed_at - deal.created_at).total_seconds()) / SECONDS_PER_DAY
        )
        if in_currency:
            won_amount += amount
        else:
            other_currency += 1
    quota = _quota(period, quotas, currency=currency, owner=owner)
    closed = won_count + lost_count
    return Forecast(
        period=period,
        owner=owner,
        currency=currency,
        quota=quota,
        pipeline=pipeline,
        weighted_pipeline=weighted,
        commit=commit,
        closed_won=won_amount,
        attainment=(won_amount / quota).quantize(RATIO) if quota else None,
        win_rate=(Decimal(won_count) / closed).quantize(RATIO) if closed else None,
        avg_sales_cycle_days=(
            (sum(cycle_days, ZERO) / len(cycle_days)).quantize(TENTH) if cycle_days else None
        ),
        deals_open=open_count,
        deals_won=won_count,
        deals_lost=lost_count,
        deals_open_undated=undated,
        deals_other_currency=other_currency,
    )


def _quota(
    period: Period, quotas: Iterable[QuotaFacts], *, currency: str, owner: str | None
) -> Decimal | None:
    parts = set(period.quota_periods())
    amounts = [
        q.amount
        for q in quotas
        if q.period in parts and q.currency == currency and (owner is None or q.owner == owner)
    ]
    return sum(amounts, ZERO) if amounts else None
