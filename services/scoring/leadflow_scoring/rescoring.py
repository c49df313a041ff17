"""Rescoring one lead: load its facts, score them, keep the MQL sticky, announce the score."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import EngagementRow, LeadProfileRow, LeadScoreRow
from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rules_versions import current_rules
from leadflow_scoring.scoring import EngagementFact, FitProfile, ScoreResult, score_lead
from leadflow_shared.events import LeadScored
from leadflow_shared.messaging import Outbox


def fit_profile_of(row: LeadProfileRow) -> FitProfile:
    return FitProfile(
        company=row.company,
        title=row.title,
        country=row.country,
        state=row.state,
        employees=row.employees,
        industry=row.industry,
        website=row.website,
        source=row.source,
        campaign=row.campaign,
        consent_marketing=row.consent_marketing,
        utm=dict(row.utm),
        custom=dict(row.custom),
    )


def engagement_facts_of(rows: list[EngagementRow]) -> list[EngagementFact]:
    return [EngagementFact(type=row.type, occurred_at=row.occurred_at) for row in rows]


async def rescore_lead(
    session: AsyncSession, outbox: Outbox, lead_id: str, now: datetime
) -> LeadScored | None:
    """Score the lead under the rules in force and stage ``lead.scored``.

    Returns None (nothing scored) while the lead's profile has not arrived yet. Once a
    lead is an MQL it stays one: ``became_mql`` is true only on the first crossing, so
    routing never receives a second MQL for the same lead.
    """
    repo = LeadRepository(session)
    profile = await repo.profile(lead_id)
    if profile is None:
        return None
    rules = await current_rules(session)
    result = score_lead(
        fit_profile_of(profile),
        engagement_facts_of(await repo.engagements(lead_id)),
        rules.rules,
        now,
    )
    row = await repo.score(lead_id)
    if row is None:
        row = LeadScoreRow(lead_id=lead_id, mql_at=None)
        repo.add_score(row)
    became_mql = row.mql_at is None and result.meets_threshold
    if became_mql:
        row.mql_at = now
    _apply(row, result, rules.version, now)
    scored = LeadScored(
        lead_id=lead_id,
        score=row.score,
        fit=row.fit,
        engagement=row.engagement,
        grade=row.grade,
        mql=row.mql,
        became_mql=became_mql,
        explanation=list(result.explanation),
        rules_version=row.rules_version,
        scored_at=now,
    )
    await outbox.add(session, scored)
    return scored


def _apply(row: LeadScoreRow, result: ScoreResult, rules_version: int, now: datetime) -> None:
    row.score = result.score
    row.fit = result.fit
    row.engagement = result.engagement
    row.grade = result.grade
    row.mql = row.mql_at is not None
    row.explanation = [factor.model_dump() for factor in result.explanation]
    row.rules_version = rules_version
    row.scored_at = now
