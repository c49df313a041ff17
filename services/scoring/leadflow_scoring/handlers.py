"""Kafka handlers: profile and engagement facts in, ``lead.scored`` out; owners; erasure."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import messaging
from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rescoring import rescore_leads
from leadflow_scoring.scoring import PROFILE_FIELDS, FitProfile
from leadflow_shared.events import (
    AccountAssigned,
    CloudEvent,
    EngagementRecorded,
    LeadAssigned,
    LeadCaptured,
    LeadErased,
    LeadMerged,
    LeadReassigned,
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
    erased = await repo.erased_among(set(lead_ids))
    for lead_id in erased:
        log.info("event for an erased lead ignored", extra=log_fields(lead_id=lead_id))
    profiles = [
        (data.lead_id, FitProfile(**{name: getattr(data, name) for name in PROFILE_FIELDS}))
        for _, data in items
        if data.lead_id not in erased
    ]
    now = utcnow()
    await repo.store_profiles(dict(profiles), now)
    await rescore_leads(session, outbox, profiles, now)


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


@handlers.on(EngagementRecorded)
async def rescore_on_engagement(
    session: AsyncSession, event: CloudEvent, data: EngagementRecorded
) -> None:
    """Store the engagement; rescore if the profile is known (else when it arrives)."""
    repo = LeadRepository(session)
    await repo.lock(data.lead_id)
    stored = await repo.store_engagement(
        data.engagement_id, data.lead_id, data.type, data.occurred_at
    )
    profile = await repo.fit_profile(data.lead_id) if stored else None
    if profile is not None:
        await rescore_leads(session, outbox, [(data.lead_id, profile)], utcnow())
    elif not stored:
        log.info(
            "engagement ignored: counted already, or the lead is erased",
            extra=log_fields(lead_id=data.lead_id),
        )


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
