"""console's read model, fed by every topic: stage times, SDR/AE/AM load, SLA breaches.

Events of different topics arrive in no particular order, so stage times keep the
earliest time seen and "latest" state (owner, open/closed) compares event times.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_console.models import LeadJourney, SlaBreach
from leadflow_console.repository import DealRepository, JourneyRepository, SlaRepository
from leadflow_shared.events import (
    AccountAssigned,
    CloudEvent,
    DealCreated,
    DealLost,
    DealStageChanged,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadCaptured,
    LeadDisqualified,
    LeadErased,
    LeadQualified,
    LeadReassigned,
    LeadRecycled,
    LeadScored,
    LeadSlaBreached,
)
from leadflow_shared.messaging import HandlerRegistry

handlers = HandlerRegistry()


def earliest(current: datetime | None, seen: datetime) -> datetime:
    return seen if current is None or seen < current else current


def latest(current: datetime | None, seen: datetime) -> datetime:
    return seen if current is None or seen > current else current


def _assign_sdr(journey: LeadJourney, owner: str, at: datetime) -> None:
    if journey.sdr_last_assigned_at is None or at >= journey.sdr_last_assigned_at:
        journey.sdr_owner = owner
        journey.sdr_last_assigned_at = at


def _close_sdr_work(journey: LeadJourney, at: datetime) -> None:
    journey.sdr_last_closed_at = latest(journey.sdr_last_closed_at, at)


@handlers.on(LeadCaptured)
async def record_capture(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.captured_at = earliest(journey.captured_at, data.captured_at)
    # An erasure may overtake the capture (another topic): never restore erased fields.
    if journey.erased_at is None:
        journey.source = data.source[:100] if data.source else None
        journey.campaign = data.campaign[:200] if data.campaign else None


@handlers.on(LeadScored)
async def record_mql(session: AsyncSession, event: CloudEvent, data: LeadScored) -> None:
    if not data.mql:
        return
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.mql_at = earliest(journey.mql_at, data.scored_at)


@handlers.on(LeadAssigned)
async def record_assignment(session: AsyncSession, event: CloudEvent, data: LeadAssigned) -> None:
    if data.role != "sdr":
        return  # an AE's load is their open deals (deals.lifecycle)
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.sdr_assigned_at = earliest(journey.sdr_assigned_at, event.time)
    _assign_sdr(journey, data.owner, event.time)


@handlers.on(LeadReassigned)
async def record_reassignment(
    session: AsyncSession, event: CloudEvent, data: LeadReassigned
) -> None:
    if data.role == "ae":
        return  # deal ownership follows deals.lifecycle
    journey = await JourneyRepository(session).journey(data.lead_id)
    if data.role == "sdr":
        _assign_sdr(journey, data.owner, event.time)
    else:
        journey.am_owner = data.owner


@handlers.on(LeadSlaBreached)
async def record_sla_breach(
    session: AsyncSession, event: CloudEvent, data: LeadSlaBreached
) -> None:
    repo = SlaRepository(session)
    if await repo.exists(event.id):
        return
    repo.add(
        SlaBreach(
            id=event.id,
            lead_id=data.lead_id,
            role=data.role,
            owner=data.owner,
            sla_due_at=data.sla_due_at,
            breached_at=event.time,
        )
    )


@handlers.on(AccountAssigned)
async def record_account_owner(
    session: AsyncSession, event: CloudEvent, data: AccountAssigned
) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.am_assigned_at = earliest(journey.am_assigned_at, event.time)
    journey.am_owner = data.owner


@handlers.on(LeadAccepted)
async def record_acceptance(session: AsyncSession, event: CloudEvent, data: LeadAccepted) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.accepted_at = earliest(journey.accepted_at, data.accepted_at)
    journey.sdr_last_accepted_at = latest(journey.sdr_last_accepted_at, data.accepted_at)


@handlers.on(LeadQualified)
async def record_qualification(
    session: AsyncSession, event: CloudEvent, data: LeadQualified
) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.qualified_at = earliest(journey.qualified_at, data.qualified_at)
    _close_sdr_work(journey, data.qualified_at)


@handlers.on(LeadDisqualified)
async def record_disqualification(
    session: AsyncSession, event: CloudEvent, data: LeadDisqualified
) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.disqualified_at = earliest(journey.disqualified_at, event.time)
    _close_sdr_work(journey, event.time)


@handlers.on(LeadRecycled)
async def record_recycling(session: AsyncSession, event: CloudEvent, data: LeadRecycled) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    _close_sdr_work(journey, event.time)


@handlers.on(DealCreated)
async def record_deal(session: AsyncSession, event: CloudEvent, data: DealCreated) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.owner = data.owner
    deal.created_at = data.created_at
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.deal_at = earliest(journey.deal_at, data.created_at)


@handlers.on(DealStageChanged)
async def record_deal_owner(
    session: AsyncSession, event: CloudEvent, data: DealStageChanged
) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.owner = data.owner


@handlers.on(DealWon)
async def record_win(session: AsyncSession, event: CloudEvent, data: DealWon) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.closed_at, deal.outcome = data.closed_at, "won"
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.won_at = earliest(journey.won_at, data.closed_at)


@handlers.on(DealLost)
async def record_loss(session: AsyncSession, event: CloudEvent, data: DealLost) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.closed_at, deal.outcome = data.closed_at, "lost"
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.lost_at = earliest(journey.lost_at, data.closed_at)


@handlers.on(LeadErased)
async def erase_lead(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """console holds no personal data; source and campaign go too, so nothing about the
    person can be inferred. Stage times stay: they are anonymous funnel counts."""
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.source = None
    journey.campaign = None
    journey.erased_at = earliest(journey.erased_at, data.erased_at)
