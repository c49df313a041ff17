"""``/v1/forecast``: pipeline, commit and attainment for a period."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query

from leadflow_deals.api.deps import REP_ID_PATTERN, DealWorker, Settings
from leadflow_deals.forecasting import forecast_period
from leadflow_deals.money import CURRENCIES
from leadflow_deals.periods import Period, PeriodError
from leadflow_deals.schemas import ForecastOut
from leadflow_shared.errors import Forbidden, InvalidInput
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/forecast", tags=["forecast"])


@router.get("", response_model=ForecastOut)
async def get_forecast(
    session: SessionDep,
    settings: Settings,
    principal: DealWorker,
    period: Annotated[str, Query(max_length=20, examples=["2026-Q4", "2026-11"])],
    owner: Annotated[str | None, Query(max_length=100, pattern=REP_ID_PATTERN)] = None,
    currency: Annotated[str | None, Query(max_length=3)] = None,
) -> ForecastOut:
    """The forecast of one rep (``owner``) or, without ``owner``, of everyone (managers).
    An AE forecasts only themselves. Money sums are in ``currency`` (default: the
    service's); each figure is defined in :mod:`leadflow_deals.forecast`."""
    try:
        parsed = Period.parse(period)
    except PeriodError as exc:
        raise InvalidInput.field("period", str(exc)) from exc
    code = (currency or settings.default_currency).upper()
    if code not in CURRENCIES:
        raise InvalidInput.field("currency", "must be an ISO 4217 code such as USD or EUR")
    if not principal.is_manager:
        if owner is not None and owner != principal.sub:
            raise Forbidden("an AE may forecast only themselves")
        owner = principal.sub
    result = await forecast_period(session, parsed, owner=owner, currency=code)
    return ForecastOut(
        period=str(result.period),
        owner=result.owner,
        currency=result.currency,
        quota=result.quota,
        pipeline=result.pipeline,
        weighted_pipeline=result.weighted_pipeline,
        commit=result.commit,
        closed_won=result.closed_won,
        attainment=_number(result.attainment),
        win_rate=_number(result.win_rate),
        avg_sales_cycle_days=_number(result.avg_sales_cycle_days),
        deals_open=result.deals_open,
        deals_won=result.deals_won,
        deals_lost=result.deals_lost,
        deals_open_undated=result.deals_open_undated,
        deals_other_currency=result.deals_other_currency,
    )


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)
