"""``/v1/deals``: list, read, edit and close deals."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.api.deps import REP_ID_PATTERN, DealIdPath, DealWorker
from leadflow_deals.api.views import deal_detail, deal_summary
from leadflow_deals.closing import close_deal
from leadflow_deals.editing import edit_deal
from leadflow_deals.models import Deal
from leadflow_deals.repository import DealRepository
from leadflow_deals.schemas import CloseIn, DealList, DealOut, DealPatch
from leadflow_shared.auth import Principal, ensure_owner
from leadflow_shared.errors import Forbidden, NotFound, problem_responses
from leadflow_shared.events.schemas import StageId
from leadflow_shared.service import Runtime, SessionDep

router = APIRouter(prefix="/v1/deals", tags=["deals"])
_NOT_YOURS = "an AE acting on another AE's deal"


@router.get("", response_model=DealList)
async def list_deals(
    session: SessionDep,
    principal: DealWorker,
    owner: Annotated[str | None, Query(max_length=100, pattern=REP_ID_PATTERN)] = None,
    stage: StageId | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DealList:
    """Newest first. An AE sees their own deals (``owner`` defaults to them); managers see
    everyone's, or one owner's."""
    if not principal.is_manager:
        if owner is not None and owner != principal.sub:
            raise Forbidden("an AE may list only their own deals")
        owner = principal.sub
    deals = await DealRepository(session).search(
        owner=owner, stage=stage, limit=limit + 1, offset=offset
    )
    more = len(deals) > limit
    return DealList(
        deals=[deal_summary(d) for d in deals[:limit]],
        next_offset=offset + limit if more else None,
    )


@router.get(
    "/{deal_id}", response_model=DealOut, responses=problem_responses(403, 404, s403=_NOT_YOURS)
)
async def get_deal(deal_id: DealIdPath, session: SessionDep, principal: DealWorker) -> DealOut:
    deal = await _owned_deal(session, deal_id, principal)
    return await _detail(session, deal)


@router.patch(
    "/{deal_id}",
    response_model=DealOut,
    responses=problem_responses(
        403, 404, 409, s403=_NOT_YOURS, s409="closed, or a stage move not allowed"
    ),
)
async def patch_deal(
    deal_id: DealIdPath,
    patch: DealPatch,
    session: SessionDep,
    runtime: Runtime,
    principal: DealWorker,
) -> DealOut:
    """Change amount, currency, expected close date, name, notes or an open stage
    (forward to any later open stage, or back one). Closed deals answer 409."""
    deal = await _owned_deal(session, deal_id, principal, for_update=True)
    await edit_deal(session, runtime.outbox, deal, patch, by=principal.sub)
    return await _detail(session, deal)


@router.post(
    "/{deal_id}/close",
    response_model=DealOut,
    responses=problem_responses(403, 404, 409, s403=_NOT_YOURS, s409="already closed"),
)
async def post_close(
    deal_id: DealIdPath,
    close: CloseIn,
    session: SessionDep,
    runtime: Runtime,
    principal: DealWorker,
) -> DealOut:
    """Close won (needs an amount, in the body or on the deal) or lost; 409 if closed."""
    deal = await _owned_deal(session, deal_id, principal, for_update=True)
    await close_deal(session, runtime.outbox, deal, close, by=principal.sub)
    return await _detail(session, deal)


async def _owned_deal(
    session: AsyncSession, deal_id: str, principal: Principal, *, for_update: bool = False
) -> Deal:
    deal = await DealRepository(session).get(deal_id, for_update=for_update)
    if deal is None:
        raise NotFound(f"no deal {deal_id}")
    ensure_owner(principal, deal.owner)
    return deal


async def _detail(session: AsyncSession, deal: Deal) -> DealOut:
    repo = DealRepository(session)
    await session.flush()
    return deal_detail(
        deal,
        await repo.stage_history(deal.id),
        await repo.owner_history(deal.id),
        await repo.qualification(deal.lead_id),
    )
