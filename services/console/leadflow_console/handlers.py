"""console's read model, fed by every topic: stage times, SDR/AE/AM load, SLA breaches.

Events of different topics arrive in no particular order, so stage times keep the
earliest time seen and "latest" state (owner, open/closed) compares event times.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

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
from leadflow_shared.messaging.consumer import BatchHandler

handlers = HandlerRegistry()
Apply = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]


def _journeys_first(apply: Apply) -> BatchHandler:
    """A set-based handler: load the run's journeys and deals in two statements, then apply
    each event in order (the session's identity map serves every later lookup)."""

    async def run(session: AsyncSession, items: Sequence[tuple[CloudEvent, Any]]) -> None:
        lead_ids = {data.lead_id for _, data in items}
        await JourneyRepository(session).preload(lead_ids)
        deal_ids = {data.deal_id for _, data in items if hasattr(data, "deal_id")}
        if deal_ids:
            await DealRepository(session).preload(deal_ids)
        for event, data in items:
            await apply(session, event, data)

    return run


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


async def record_capture(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.captured_at = earliest(journey.captured_at, data.captured_at)
    # An erasure may overtake the capture (another topic): never restore erased fields.
    if journey.erased_at is None:
        journey.source = data.source[:100] if data.source else None
        journey.campaign = data.campaign[:200] if data.campaign else None


async def record_mql(session: AsyncSession, event: CloudEvent, data: LeadScored) -> None:
    if not data.mql:
        return
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.mql_at = earliest(journey.mql_at, data.scored_at)


async def record_assignment(session: AsyncSession, event: CloudEvent, data: LeadAssigned) -> None:
    if data.role != "sdr":
        return  # an AE's load is their open deals (deals.lifecycle)
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.sdr_assigned_at = earliest(journey.sdr_assigned_at, event.time)
    _assign_sdr(journey, data.owner, event.time)


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


async def record_account_owner(
    session: AsyncSession, event: CloudEvent, data: AccountAssigned
) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.am_assigned_at = earliest(journey.am_assigned_at, event.time)
    journey.am_owner = data.owner


async def record_acceptance(session: AsyncSession, event: CloudEvent, data: LeadAccepted) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.accepted_at = earliest(journey.accepted_at, data.accepted_at)
    journey.sdr_last_accepted_at = latest(journey.sdr_last_accepted_at, data.accepted_at)


async def record_qualification(
    session: AsyncSession, event: CloudEvent, data: LeadQualified
) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.qualified_at = earliest(journey.qualified_at, data.qualified_at)
    _close_sdr_work(journey, data.qualified_at)


async def record_disqualification(
    session: AsyncSession, event: CloudEvent, data: LeadDisqualified
) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.disqualified_at = earliest(journey.disqualified_at, event.time)
    _close_sdr_work(journey, event.time)


async def record_recycling(session: AsyncSession, event: CloudEvent, data: LeadRecycled) -> None:
    journey = await JourneyRepository(session).journey(data.lead_id)
    _close_sdr_work(journey, event.time)


async def record_deal(session: AsyncSession, event: CloudEvent, data: DealCreated) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.owner = data.owner
    deal.created_at = data.created_at
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.deal_at = earliest(journey.deal_at, data.created_at)


async def record_deal_owner(
    session: AsyncSession, event: CloudEvent, data: DealStageChanged
) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.owner = data.owner


async def record_win(session: AsyncSession, event: CloudEvent, data: DealWon) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.closed_at, deal.outcome = data.closed_at, "won"
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.won_at = earliest(journey.won_at, data.closed_at)


async def record_loss(session: AsyncSession, event: CloudEvent, data: DealLost) -> None:
    deal = await DealRepository(session).deal(data.deal_id, data.lead_id, data.owner)
    deal.closed_at, deal.outcome = data.closed_at, "lost"
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.lost_at = earliest(journey.lost_at, data.closed_at)


async def erase_lead(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """console holds no personal data; source and campaign go too, so nothing about the
    person can be inferred. Stage times stay: they are anonymous funnel counts."""
    journey = await JourneyRepository(session).journey(data.lead_id)
    journey.source = None
    journey.campaign = None
    journey.erased_at = earliest(journey.erased_at, data.erased_at)


for _model, _apply in (
    (LeadCaptured, record_capture),
    (LeadScored, record_mql),
    (LeadAssigned, record_assignment),
    (LeadReassigned, record_reassignment),
    (LeadSlaBreached, record_sla_breach),
    (AccountAssigned, record_account_owner),
    (LeadAccepted, record_acceptance),
    (LeadQualified, record_qualification),
    (LeadDisqualified, record_disqualification),
    (LeadRecycled, record_recycling),
    (DealCreated, record_deal),
    (DealStageChanged, record_deal_owner),
    (DealWon, record_win),
    (DealLost, record_loss),
    (LeadErased, erase_lead),
):
    handlers.on_batch(_model)(_journeys_first(_apply))
