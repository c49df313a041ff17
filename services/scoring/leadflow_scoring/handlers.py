"""Kafka handlers: profile and engagement facts in, ``lead.scored`` out; owners; erasure."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import messaging
from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rescoring import rescore_lead
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


async def _store_profile_and_rescore(session: AsyncSession, data: ProfileEvent) -> None:
    repo = LeadRepository(session)
    await repo.lock(data.lead_id)
    now = utcnow()
    # Each of these events carries the whole current profile: replace, do not merge.
    profile = FitProfile(**{name: getattr(data, name) for name in PROFILE_FIELDS})
    if not await repo.store_profile(data.lead_id, profile, now):
        log.info("event for an erased lead ignored", extra=log_fields(lead_id=data.lead_id))
        return
    await rescore_lead(session, outbox, data.lead_id, now, profile)


@handlers.on(LeadCaptured)
async def score_captured_lead(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
    await _store_profile_and_rescore(session, data)


@handlers.on(LeadMerged)
async def rescore_merged_lead(session: AsyncSession, event: CloudEvent, data: LeadMerged) -> None:
    await _store_profile_and_rescore(session, data)


@handlers.on(LeadUpdated)
async def rescore_updated_lead(session: AsyncSession, event: CloudEvent, data: LeadUpdated) -> None:
    await _store_profile_and_rescore(session, data)


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
    if stored:
        await rescore_lead(session, outbox, data.lead_id, utcnow())
    else:
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
