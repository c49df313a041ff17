"""Kafka handlers: profile and engagement facts in, ``lead.scored`` out; owners; erasure."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import EngagementRow, LeadProfileRow, messaging
from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rescoring import rescore_lead
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
    if await repo.is_erased(data.lead_id):
        log.info("event for an erased lead ignored", extra=log_fields(lead_id=data.lead_id))
        return
    now = utcnow()
    row = await repo.profile(data.lead_id)
    if row is None:
        row = LeadProfileRow(lead_id=data.lead_id)
        repo.add_profile(row)
    # Each of these events carries the whole current profile: replace, do not merge.
    row.company = data.company
    row.title = data.title
    row.country = data.country
    row.state = data.state
    row.employees = data.employees
    row.industry = data.industry
    row.website = data.website
    row.source = data.source
    row.campaign = data.campaign
    row.consent_marketing = data.consent_marketing
    row.utm = dict(data.utm)
    row.custom = dict(data.custom)
    row.updated_at = now
    await session.flush()
    await rescore_lead(session, outbox, data.lead_id, now)


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
    if await repo.is_erased(data.lead_id):
        log.info("event for an erased lead ignored", extra=log_fields(lead_id=data.lead_id))
        return
    stored = await repo.add_engagement(
        EngagementRow(
            engagement_id=data.engagement_id,
            lead_id=data.lead_id,
            type=data.type,
            occurred_at=data.occurred_at,
        )
    )
    if stored:
        await rescore_lead(session, outbox, data.lead_id, utcnow())


@handlers.on(LeadErased)
async def erase_lead(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """Delete the profile, engagements, score and owners; later events are ignored."""
    repo = LeadRepository(session)
    await repo.lock(data.lead_id)
    await repo.erase(data.lead_id, data.erased_at)


@handlers.on(LeadAssigned)
async def record_assignment(session: AsyncSession, event: CloudEvent, data: LeadAssigned) -> None:
    await _set_owner(session, data.lead_id, data.role, data.owner)


@handlers.on(LeadReassigned)
async def record_reassignment(
    session: AsyncSession, event: CloudEvent, data: LeadReassigned
) -> None:
    await _set_owner(session, data.lead_id, data.role, data.owner)


@handlers.on(AccountAssigned)
async def record_account_owner(
    session: AsyncSession, event: CloudEvent, data: AccountAssigned
) -> None:
    await _set_owner(session, data.lead_id, "am", data.owner)


async def _set_owner(session: AsyncSession, lead_id: str, role: str, owner: str) -> None:
    repo = LeadRepository(session)
    if not await repo.is_erased(lead_id):
        await repo.set_owner(lead_id, role, owner)
