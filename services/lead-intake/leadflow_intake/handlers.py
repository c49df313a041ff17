"""lead-intake learns who owns each lead from ``leads.routing`` (for ownership checks),
and makes accounts from won deals (``deal.won``: the lead's company, owned by the deal's
AE until ``account.assigned`` names its AM).

Set-based: each run of owner events in a fetched batch is one upsert statement. The
consumer runs all handlers of a batch in one transaction and may call a handler again
with the same events (after a rollback), which an upsert absorbs.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.accounts import (
    AccountIn,
    matchable_domain,
    set_owner_of_deal_accounts,
    upsert_accounts,
)
from leadflow_intake.repository import LeadRepository
from leadflow_shared.events import (
    AccountAssigned,
    CloudEvent,
    DealWon,
    LeadAssigned,
    LeadReassigned,
)
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
    for _, data in items:  # the won deal's account now belongs to its AM
        await set_owner_of_deal_accounts(session, data.deal_id, data.owner, "am")


@handlers.on(DealWon)
async def account_from_won_deal(session: AsyncSession, event: CloudEvent, data: DealWon) -> None:
    """The won deal's company becomes (or updates) an account: by the lead's registrable
    domain (not free mail), else by the company name. Its owner is the lead's AM when
    routing already named one, else the deal's AE; an AM (or an admin's list) is not
    replaced by an AE. A lead erased or unknown here, without a company or a domain,
    makes no account."""
    repo = LeadRepository(session)
    lead = await repo.get(data.lead_id)
    if lead is None or lead.erased_at is not None:
        return
    domain = matchable_domain(lead.domain)
    name = data.company or lead.company or domain
    if not name:
        return
    am = (await repo.owners(data.lead_id)).get("am")
    await upsert_accounts(
        session,
        [AccountIn(name=name[:200], domain=domain, owner=am or data.owner)],
        source="deal",
        owner_role="am" if am else "ae",
        deal_id=data.deal_id,
        keep_owner_roles=frozenset({"am", "import"}) if not am else frozenset(),
    )
