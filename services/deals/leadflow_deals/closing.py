"""Closing a deal, won or lost: the only way into a closed stage."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.models import Deal, StageChange
from leadflow_deals.money import to_cents
from leadflow_deals.repository import DealRepository
from leadflow_deals.schemas import CloseIn
from leadflow_deals.stages import is_open
from leadflow_shared.errors import Conflict, InvalidInput
from leadflow_shared.events import DealLost, DealWon, EventData
from leadflow_shared.events.schemas import StageId
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox


async def close_deal(
    session: AsyncSession, outbox: Outbox, deal: Deal, close: CloseIn, *, by: str
) -> None:
    """Close ``deal`` and announce ``deal.won`` (with the company, for the Account
    Manager hand-off) or ``deal.lost``. The expected close date becomes the actual one.

    Raises :class:`Conflict` when already closed, :class:`InvalidInput` (``amount``) for a
    win with no amount in the body or on the deal.
    """
    current = cast(StageId, deal.stage)
    if not is_open(current):
        raise Conflict(f"deal {deal.id} is already {current}")
    amount: Decimal | None = close.amount if close.amount is not None else deal.amount
    if amount is not None:
        amount = to_cents(amount)  # PostgreSQL's NUMERIC(20, 4) reads back four places
    if close.outcome == "won" and amount is None:
        raise InvalidInput.field(
            "amount", "a won deal needs an amount: send it here or PATCH the deal first"
        )
    target: StageId = "closed_won" if close.outcome == "won" else "closed_lost"
    now = utcnow()
    deal.stage = target
    deal.amount = amount
    deal.close_reason = close.reason or None
    deal.closed_at = now
    deal.close_date = now.date()
    deal.updated_at = now
    DealRepository(session).add(
        StageChange(
            id=new_id(), deal_id=deal.id, from_stage=current, to_stage=target, at=now, by=by
        )
    )
    event: EventData
    if amount is not None and close.outcome == "won":
        event = DealWon(
            lead_id=deal.lead_id,
            deal_id=deal.id,
            owner=deal.owner,
            amount=amount,
            currency=deal.currency,
            reason=deal.close_reason,
            company=deal.company,
            closed_at=now,
        )
    else:
        event = DealLost(
            lead_id=deal.lead_id,
            deal_id=deal.id,
            owner=deal.owner,
            amount=amount,
            currency=deal.currency,
            reason=deal.close_reason,
            closed_at=now,
        )
    await outbox.add(session, event, subject=deal.id, aggregate_type="deal", aggregate_id=deal.id)
