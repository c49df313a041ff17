"""Routing hands a lead to an AE: open its deal, or move the open deal to the new owner."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.repository import DealRepository
from leadflow_deals.stages import FIRST_STAGE, PROBABILITY
from leadflow_shared.events import DealCreated
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox
from leadflow_shared.observability import log_fields

log = logging.getLogger(__name__)


async def open_deal_for_ae(
    session: AsyncSession,
    outbox: Outbox,
    *,
    lead_id: str,
    owner: str,
    company: str | None,
    currency: str,
    opened_by: str,
) -> str | None:
    """Open a deal in discovery for the lead's AE, unless the lead already has an open one;
    returns the new deal's id.

    A second AE assignment while a deal is open opens nothing; if it names another AE,
    the open deal follows routing's new owner (recorded like a reassignment). The common
    case, a new deal, costs three statements and no ORM flush.
    """
    repo = DealRepository(session)
    now = utcnow()
    deal_id = new_id()
    opened, company = await repo.open_deal(
        deal_id=deal_id,
        lead_id=lead_id,
        owner=owner,
        stage=FIRST_STAGE,
        currency=currency,
        company=company,
        now=now,
        opened_by=opened_by,
    )
    if not opened:
        await _move_open_deal(session, lead_id, owner, reason="assigned again", by=opened_by)
        return None
    await outbox.add(
        session,
        DealCreated(
            lead_id=lead_id,
            deal_id=deal_id,
            owner=owner,
            stage=FIRST_STAGE,
            probability=PROBABILITY[FIRST_STAGE],
            amount=None,
            currency=currency,
            company=company,
            created_at=now,
        ),
        subject=deal_id,
        aggregate_type="deal",
        aggregate_id=deal_id,
    )
    log.info("deal opened", extra=log_fields(deal_id=deal_id, lead_id=lead_id, owner=owner))
    return deal_id


async def reassign_open_deal(
    session: AsyncSession, *, lead_id: str, owner: str, reason: str | None, by: str
) -> str | None:
    """Give the lead's open deal to ``owner``; closed deals keep the owner who closed them.
    Returns the open deal's id (None: the lead has none)."""
    return await _move_open_deal(session, lead_id, owner, reason=reason, by=by)


async def _move_open_deal(
    session: AsyncSession, lead_id: str, owner: str, *, reason: str | None, by: str
) -> str | None:
    repo = DealRepository(session)
    deal = await repo.open_deal_owner(lead_id)
    if deal is None:
        return None
    deal_id, current = deal
    if current != owner:
        await repo.move_owner(deal_id, current, owner, reason=reason, by=by, at=utcnow())
        log.info("deal owner changed", extra=log_fields(deal_id=deal_id, owner=owner))
    return deal_id
