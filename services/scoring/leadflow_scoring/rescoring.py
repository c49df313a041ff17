"""Rescoring one lead: load its facts, score them, keep the MQL sticky, announce the score."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rules_versions import current_rules
from leadflow_scoring.scoring import FitProfile, score_lead
from leadflow_shared.events import LeadScored
from leadflow_shared.messaging import Outbox


async def rescore_lead(
    session: AsyncSession,
    outbox: Outbox,
    lead_id: str,
    now: datetime,
    profile: FitProfile | None = None,
) -> LeadScored | None:
    """Score the lead under the rules in force and stage ``lead.scored``.

    ``profile`` is the lead's profile when the caller has just stored it (else it is read).
    Returns None (nothing scored) while the lead's profile has not arrived yet. Once a
    lead is an MQL it stays one: ``became_mql`` is true only on the first crossing, so
    routing never receives a second MQL for the same lead.
    """
    repo = LeadRepository(session)
    if profile is None:
        profile = await repo.fit_profile(lead_id)
        if profile is None:
            return None
    rules = await current_rules(session)
    result = score_lead(profile, await repo.engagement_facts(lead_id), rules.rules, now)
    mql, became_mql = await repo.store_score(lead_id, result, rules.version, now)
    scored = LeadScored(
        lead_id=lead_id,
        score=result.score,
        fit=result.fit,
        engagement=result.engagement,
        grade=result.grade,
        mql=mql,
        became_mql=became_mql,
        explanation=list(result.explanation),
        rules_version=rules.version,
        scored_at=now,
    )
    await outbox.add(session, scored)
    return scored
