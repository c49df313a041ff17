"""lead-intake learns who owns each lead from ``leads.routing`` (for ownership checks)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.repository import LeadRepository
from leadflow_shared.events import AccountAssigned, CloudEvent, LeadAssigned, LeadReassigned
from leadflow_shared.messaging import HandlerRegistry

handlers = HandlerRegistry()


@handlers.on(LeadAssigned)
async def record_assignment(session: AsyncSession, event: CloudEvent, data: LeadAssigned) -> None:
    await LeadRepository(session).set_owner(data.lead_id, data.role, data.owner)


@handlers.on(LeadReassigned)
async def record_reassignment(
    session: AsyncSession, event: CloudEvent, data: LeadReassigned
) -> None:
    await LeadRepository(session).set_owner(data.lead_id, data.role, data.owner)


@handlers.on(AccountAssigned)
async def record_account_owner(
    session: AsyncSession, event: CloudEvent, data: AccountAssigned
) -> None:
    await LeadRepository(session).set_owner(data.lead_id, "am", data.owner)
