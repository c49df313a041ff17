"""Kafka handlers: profile and engagement facts in, ``lead.scored`` out; owners; erasure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import messaging
from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rescoring import Rescore, rescore_leads
from leadflow_scoring.scoring import EngagementFact, profile_of
from leadflow_shared.events import (
    AccountAssigned,
    CloudEvent,
    EngagementRecorded,
    LeadAssigned,
    LeadCaptured,
    LeadErased,
    LeadMerged,
    LeadReassigned,
    LeadRecycled,
    LeadUpdated,
)
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import HandlerRegistry, Outbox
from leadflow_shared.observability import log_fields

log = logging.getLogger(__name__)

handlers = HandlerRegistry()
# Handlers receive no runtime; this writes the same outbox table with the same source.
outbox = Outbox(messaging, "leadflow/scoring")

ProfileEvent = LeadCaptured | LeadMerged | LeadUpdated


async def _store_profiles_and_rescore(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, ProfileEvent]]
) -> None:
    """A run of profile events, set-based: each event carries the lead's whole current
    profile, which replaces the stored one (the last per lead is kept) and is scored."""
    repo = LeadRepository(session)
    lead_ids = [data.lead_id for _, data in items]
    await repo.lock(*lead_ids)
    facts = await repo.facts(set(lead_ids))
    for lead_id in facts.erased:
        log.info("event for an erased lead ignored", extra=log_fields(lead_id=lead_id))
    rescores = [
        Rescore(
            data.lead_id,
            profile_of(data),
            traceparent=event.traceparent,
        )
        for event, data in items
        if data.lead_id not in facts.erased
    ]
    now = utcnow()
    await repo.store_profiles({r.lead_id: r.profile for r in rescores}, now)
    await rescore_leads(session, outbox, rescores, now, facts)


@handlers.on_batch(LeadCaptured)
async def score_captured_leads(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadCaptured]]
) -> None:
    await _store_profiles_and_rescore(session, items)


@handlers.on_batch(LeadMerged)
async def rescore_merged_leads(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadMerged]]
) -> None:
    await _store_profiles_and_rescore(session, items)


@handlers.on_batch(LeadUpdated)
async def rescore_updated_leads(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadUpdated]]
) -> None:
    await _store_profiles_and_rescore(session, items)


@handlers.on_batch(EngagementRecorded)
async def rescore_on_engagements(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, EngagementRecorded]]
) -> None:
    """Store a run of engagements; each new one rescores its lead if the lead's profile is
    known (else the profile's arrival scores it). An engagement id counts once."""
    repo = LeadRepository(session)
    lead_ids = [data.lead_id for _, data in items]
    await repo.lock(*lead_ids)
    facts = await repo.facts(set(lead_ids))  # before this run's engagements are stored
    first: dict[str, EngagementRecorded] = {}
    traceparents: dict[str, str | None] = {}
    for event, data in items:
        if data.lead_id not in facts.erased and data.engagement_id not in first:
            first[data.engagement_id] = data
            traceparents[data.engagement_id] = event.traceparent
    stored = await repo.store_engagements(
        [
            {
                "engagement_id": e.engagement_id,
                "lead_id": e.lead_id,
                "type": e.type,
                "occurred_at": e.occurred_at,
            }
            for e in first.values()
        ]
    )
    new = [data for data in first.values() if data.engagement_id in stored]
    if len(new) < len(items):
        log.info(
            "engagements ignored: counted already, or their lead is erased",
            extra=log_fields(count=len(items) - len(new)),
        )
    if not new:
        return
    profiles = await repo.fit_profiles({data.lead_id for data in new})
    rescores = [
        Rescore(
            data.lead_id,
            profiles[data.lead_id],
            EngagementFact(data.type, data.occurred_at),
            traceparents[data.engagement_id],
        )
        for data in new
        if data.lead_id in profiles
    ]
    await rescore_leads(session, outbox, rescores, utcnow(), facts)


@handlers.on(LeadErased)
async def erase_lead(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """Delete the profile, engagements, score and owners; later events are ignored."""
    repo = LeadRepository(session)
    await repo.lock(data.lead_id)
    await repo.erase(data.lead_id, data.erased_at)


# Owners are set-based: one run of assignments costs two statements, whatever its length.
@handlers.on_batch(LeadAssigned)
async def record_assignments(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadAssigned]]
) -> None:
    await LeadRepository(session).set_owners([(d.lead_id, d.role, d.owner) for _, d in items])


@handlers.on_batch(LeadReassigned)
async def record_reassignments(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadReassigned]]
) -> None:
    await LeadRepository(session).set_owners([(d.lead_id, d.role, d.owner) for _, d in items])


@handlers.on_batch(AccountAssigned)
async def record_account_owners(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, AccountAssigned]]
) -> None:
    await LeadRepository(session).set_owners([(d.lead_id, "am", d.owner) for _, d in items])


@handlers.on_batch(LeadRecycled)
async def reset_mql_of_recycled_leads(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadRecycled]]
) -> None:
    """A lead recycled to nurture is no MQL any more: its MQL state is cleared, so that
    renewed engagement (or a profile change) that meets the MQL rule makes it an MQL again,
    with ``became_mql`` true and routing routing it anew. The score itself stays."""
    repo = LeadRepository(session)
    lead_ids = [data.lead_id for _, data in items]
    await repo.lock(*lead_ids)
    latest: dict[str, datetime] = {}
    for event, data in items:
        latest[data.lead_id] = event.time
    await repo.reset_mql(sorted(latest.items()))
