"""Loads what a forecast needs from the database and hands it to the pure computation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.forecast import DealFacts, Forecast, QuotaFacts, compute_forecast
from leadflow_deals.periods import Period
from leadflow_deals.repository import DealRepository, QuotaRepository
from leadflow_shared.events.schemas import StageId


async def forecast_period(
    session: AsyncSession, period: Period, *, owner: str | None, currency: str
) -> Forecast:
    """Forecast ``period`` for ``owner`` (``None``: everyone) in ``currency``."""
    start = datetime.combine(period.first_day, time.min, tzinfo=UTC)
    end = datetime.combine(period.last_day + timedelta(days=1), time.min, tzinfo=UTC)
    deals = await DealRepository(session).for_forecast(
        owner=owner, closed_from=start, closed_before=end
    )
    quotas = await QuotaRepository(session).for_periods(
        owner=owner, periods=[str(p) for p in period.quota_periods()]
    )
    return compute_forecast(
        period,
        [
            DealFacts(
                owner=d.owner,
                stage=cast(StageId, d.stage),
                amount=d.amount,
                currency=d.currency,
                close_date=d.close_date,
                created_at=d.created_at,
                closed_at=d.closed_at,
            )
            for d in deals
        ],
        [
            QuotaFacts(
                owner=q.rep_id,
                period=Period.parse(q.period),
                amount=q.amount,
                currency=q.currency,
            )
            for q in quotas
        ],
        currency=currency,
        owner=owner,
    )
