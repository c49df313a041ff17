"""``/v1/quotas/{rep_id}``: a Sales Manager sets a rep's quota for a month or quarter."""

from __future__ import annotations

from fastapi import APIRouter

from leadflow_deals.api.deps import QuotaSetter, RepIdPath, Settings
from leadflow_deals.models import Quota
from leadflow_deals.repository import QuotaRepository
from leadflow_deals.schemas import QuotaIn, QuotaOut
from leadflow_shared.ids import utcnow
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/quotas", tags=["quotas"])


@router.put("/{rep_id}", response_model=QuotaOut)
async def put_quota(
    rep_id: RepIdPath,
    body: QuotaIn,
    session: SessionDep,
    settings: Settings,
    principal: QuotaSetter,
) -> QuotaOut:
    """Set (or replace) the quota of ``rep_id`` for ``period`` (``2026-11`` or ``2026-Q4``).

    A quarter's forecast adds the quarter's own quota and its months' quotas."""
    repo = QuotaRepository(session)
    now = utcnow()
    currency = body.currency or settings.default_currency
    quota = await repo.get(rep_id, body.period)
    if quota is None:
        quota = Quota(rep_id=rep_id, period=body.period)
        repo.add(quota)
    quota.amount = body.amount
    quota.currency = currency
    quota.updated_at = now
    quota.updated_by = principal.sub
    return QuotaOut(
        rep_id=rep_id,
        period=body.period,
        amount=body.amount,
        currency=currency,
        updated_at=now,
        updated_by=principal.sub,
    )
