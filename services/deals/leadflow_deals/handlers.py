"""What deals consumes: AE assignments from ``leads.routing``, the SDRs' qualifications from
``leads.qualification`` and ``privacy.erasure``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.assignment import open_deal_for_ae, reassign_open_deal
from leadflow_deals.erasure import erase_lead_data
from leadflow_deals.models import messaging
from leadflow_deals.repository import DealRepository
from leadflow_shared.events import (
    CloudEvent,
    LeadAssigned,
    LeadErased,
    LeadQualified,
    LeadReassigned,
)
from leadflow_shared.messaging import HandlerRegistry, Outbox


def build_handlers(*, source: str, default_currency: str) -> HandlerRegistry:
    """The handlers, bound to the service's event source and new deals' currency."""
    handlers = HandlerRegistry()
    outbox = Outbox(messaging, source)

    @handlers.on(LeadAssigned)
    async def open_deal_on_ae_assignment(
        session: AsyncSession, event: CloudEvent, data: LeadAssigned
    ) -> None:
        if data.role != "ae":
            return
        await open_deal_for_ae(
            session,
            outbox,
            lead_id=data.lead_id,
            owner=data.owner,
            company=data.company,
            currency=default_currency,
            opened_by=event.source,
        )

    @handlers.on(LeadReassigned)
    async def move_deal_on_ae_reassignment(
        session: AsyncSession, event: CloudEvent, data: LeadReassigned
    ) -> None:
        if data.role != "ae":
            return
        await reassign_open_deal(
            session, lead_id=data.lead_id, owner=data.owner, reason=data.reason, by=event.source
        )

    @handlers.on(LeadQualified)
    async def keep_qualification(
        session: AsyncSession, event: CloudEvent, data: LeadQualified
    ) -> None:
        """The qualification travels to the lead's deal (open now or later)."""
        repo = DealRepository(session)
        if await repo.is_erased(data.lead_id):
            return
        await repo.keep_qualification(
            {
                "lead_id": data.lead_id,
                "framework": data.framework,
                "fields": data.fields,
                "notes": data.notes,
                "qualified_by": data.owner,
                "qualified_at": data.qualified_at,
            }
        )

    @handlers.on(LeadErased)
    async def erase_deals_of_lead(
        session: AsyncSession, event: CloudEvent, data: LeadErased
    ) -> None:
        await erase_lead_data(session, data.lead_id, data.erased_at)

    return handlers
