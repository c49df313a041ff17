"""lead-intake learns who owns each lead from ``leads.routing`` (for ownership checks).

Set-based: each run of owner events in a fetched batch is one upsert statement. The
consumer runs all handlers of a batch in one transaction and may call a handler again
with the same events (after a rollback), which an upsert absorbs.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.repository import LeadRepository
from leadflow_shared.events import AccountAssigned, CloudEvent, LeadAssigned, LeadReassigned
from leadflow_shared.messaging import HandlerRegistry

handlers = HandlerRegistry()


@handlers.on_batch(LeadAssigned)
async def record_assignments(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadAssigned]]
) -> None:
    await LeadRepository(session).set_owners((d.lead_id, d.role, d.owner) for _, d in items)


@handlers.on_batch(LeadReassigned)
async def record_reassignments(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadReassigned]]
) -> None:
    await LeadRepository(session).set_owners((d.lead_id, d.role, d.owner) for _, d in items)


@handlers.on_batch(AccountAssigned)
async def record_account_owners(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, AccountAssigned]]
) -> None:
    await LeadRepository(session).set_owners((d.lead_id, "am", d.owner) for _, d in items)
