"""What routing does with each event it consumes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.assignment import assign_am, assign_sdr, record
from leadflow_routing.counters import open_work_counted
from leadflow_routing.models import RoutedLead, outbox
from leadflow_routing.repository import RoutingRepository
from leadflow_shared.events import (
    CloudEvent,
    DealCreated,
    DealLost,
    DealWon,
    LeadCaptured,
    LeadErased,
    LeadMerged,
    LeadScored,
    LeadUpdated,
)
from leadflow_shared.events.schemas import AccountMatch
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import HandlerRegistry

handlers = HandlerRegistry()
ROUTING_FIELDS = ("country", "state", "employees", "industry", "title", "source", "campaign")


async def _lead(session: AsyncSession, lead_id: str) -> RoutedLead:
    repo = RoutingRepository(session)
    lead = await repo.lead(lead_id, for_update=True)
    if lead is None:
        lead = RoutedLead(id=lead_id, profile={}, updated_at=utcnow())
        repo.add(lead)
    return lead


async def _route_if_ready(session: AsyncSession, lead: RoutedLead) -> None:
    if lead.mql and lead.profile_known and lead.status == "new" and not lead.erased:
        await assign_sdr(session, outbox, lead, utcnow())


async def _profile(session: AsyncSession, data: LeadCaptured | LeadMerged | LeadUpdated) -> None:
    lead = await _lead(session, data.lead_id)
    if lead.erased:
        return
    previous = lead.profile or {}
    profile: dict[str, object] = {name: getattr(data, name) for name in ROUTING_FIELDS}
    # The matched account: an event that carries the field sets it (null: no account); one
    # without it (older producers) keeps what routing knew.
    if "account" in data.model_fields_set:
        profile["account"] = _account(data.account)
    elif previous.get("account") is not None:
        profile["account"] = previous["account"]
    fit_grade = getattr(data, "fit_grade", None)
    if fit_grade is not None or previous.get("fit_grade") is not None:
        profile["fit_grade"] = fit_grade if fit_grade is not None else previous["fit_grade"]
    lead.profile = profile
    lead.company = data.company
    lead.profile_known = True
    if isinstance(data, LeadCaptured):
        lead.captured_at = data.captured_at
    lead.updated_at = utcnow()
    await _route_if_ready(session, lead)


def _account(match: AccountMatch | None) -> dict[str, object] | None:
    """What rules and the ``account_owner`` strategy read of the matched account."""
    if match is None:
        return None
    return {
        "account_id": match.account_id,
        "owner": match.owner,
        "match": match.match,
        "confidence": match.confidence,
    }


@handlers.on(LeadCaptured)
async def on_captured(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
    await _profile(session, data)


@handlers.on(LeadMerged)
async def on_merged(session: AsyncSession, event: CloudEvent, data: LeadMerged) -> None:
    await _profile(session, data)


@handlers.on(LeadUpdated)
async def on_updated(session: AsyncSession, event: CloudEvent, data: LeadUpdated) -> None:
    await _profile(session, data)


@handlers.on(LeadScored)
async def on_scored(session: AsyncSession, event: CloudEvent, data: LeadScored) -> None:
    """An MQL is routed to an SDR once; later scores only update what rules can see."""
    lead = await _lead(session, data.lead_id)
    lead.score = data.score
    # Fit grade, once lead.scored carries one (rules may match ``fit_grade``).
    fit_grade = getattr(data, "fit_grade", None)
    if fit_grade is not None and not lead.erased:
        lead.profile = {**(lead.profile or {}), "fit_grade": fit_grade}
    if data.mql and not lead.mql:
        lead.mql = True
    lead.updated_at = utcnow()
    await _route_if_ready(session, lead)


@handlers.on(DealCreated)
async def on_deal_created(session: AsyncSession, event: CloudEvent, data: DealCreated) -> None:
    lead = await _lead(session, data.lead_id)
    lead.deal_id = data.deal_id
    await RoutingRepository(session).add_decision(
        record(
            lead,
            "deal_created",
            f"deal {data.deal_id} opened in {data.stage}",
            utcnow(),
            role="ae",
            owner=data.owner,
        )
    )


@handlers.on(DealWon)
async def on_deal_won(session: AsyncSession, event: CloudEvent, data: DealWon) -> None:
    """Closed Won: the account goes to an account manager."""
    lead = await _lead(session, data.lead_id)
    lead.deal_id = data.deal_id
    now = utcnow()
    await RoutingRepository(session).add_decision(
        record(lead, "deal_won", f"deal {data.deal_id} won", now, role="ae", owner=data.owner)
    )
    if lead.am is None:
        await assign_am(session, outbox, lead, now)


@handlers.on(DealLost)
async def on_deal_lost(session: AsyncSession, event: CloudEvent, data: DealLost) -> None:
    lead = await _lead(session, data.lead_id)
    repo = RoutingRepository(session)
    async with open_work_counted(repo, lead):
        lead.status = "lost"
    lead.updated_at = utcnow()
    await repo.add_decision(
        record(
            lead,
            "deal_lost",
            f"deal {data.deal_id} lost",
            lead.updated_at,
            role="ae",
            owner=data.owner,
        )
    )


@handlers.on(LeadErased)
async def on_erased(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """Forget the profile and qualification notes; keep ids and decisions (no personal data)."""
    lead = await _lead(session, data.lead_id)
    lead.profile = {}
    lead.company = None
    lead.qualification = None
    lead.erased = True
    lead.sla_due_at = None
    lead.updated_at = utcnow()
