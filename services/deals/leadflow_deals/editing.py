"""An AE or manager edits a deal: amount, currency, expected close date, stage, name."""

from __future__ import annotations

from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.models import Deal, StageChange
from leadflow_deals.repository import DealRepository
from leadflow_deals.schemas import DealPatch
from leadflow_deals.stages import PROBABILITY, StageMoveRefused, check_stage_move, is_open
from leadflow_shared.errors import Conflict
from leadflow_shared.events import DealStageChanged
from leadflow_shared.events.schemas import StageId
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox


async def edit_deal(
    session: AsyncSession, outbox: Outbox, deal: Deal, patch: DealPatch, *, by: str
) -> None:
    """Apply the fields sent; a stage change is checked, recorded and announced.

    Raises :class:`Conflict` for a closed deal or a stage move the pipeline refuses.
    """
    current = cast(StageId, deal.stage)
    if not is_open(current):
        raise Conflict(f"deal {deal.id} is {current}; closed deals cannot be changed")
    sent = patch.model_fields_set
    now = utcnow()
    if patch.stage is not None and patch.stage != current:
        try:
            check_stage_move(current, patch.stage)
        except StageMoveRefused as exc:
            raise Conflict(str(exc)) from exc
        deal.stage = patch.stage
        DealRepository(session).add(
            StageChange(
                id=new_id(),
                deal_id=deal.id,
                from_stage=current,
                to_stage=patch.stage,
                at=now,
                by=by,
            )
        )
        await outbox.add(
            session,
            DealStageChanged(
                lead_id=deal.lead_id,
                deal_id=deal.id,
                owner=deal.owner,
                from_stage=current,
                to_stage=patch.stage,
                probability=PROBABILITY[patch.stage],
                changed_at=now,
            ),
            subject=deal.id,
            aggregate_type="deal",
            aggregate_id=deal.id,
        )
    if "amount" in sent:
        deal.amount = patch.amount
    if patch.currency is not None:
        deal.currency = patch.currency
    if "close_date" in sent:
        deal.close_date = patch.close_date
    if "name" in sent:
        deal.name = patch.name or None
    if "notes" in sent:
        deal.notes = patch.notes or None
    deal.updated_at = now
