"""Rescoring leads: load their facts, score them, keep the MQL sticky, announce the scores."""

from __future__ import annotations

from bisect import insort
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.repository import LeadFacts, LeadRepository
from leadflow_scoring.rules_versions import current_rules
from leadflow_scoring.scoring import EngagementFact, FitProfile, score_lead
from leadflow_shared.events import LeadScored
from leadflow_shared.messaging import Outbox
from leadflow_shared.observability import child_traceparent


@dataclass(frozen=True)
class Rescore:
    """One event's rescoring: the lead's profile after it, and the engagement it added."""

    lead_id: str
    profile: FitProfile
    engagement: EngagementFact | None = None
    traceparent: str | None = None  # the event's: its ``lead.scored`` continues the trace


async def rescore_leads(
    session: AsyncSession,
    outbox: Outbox,
    items: Sequence[Rescore],
    now: datetime,
    facts: LeadFacts,
) -> list[LeadScored]:
    """Score each item in order under the rules in force and stage one ``lead.scored`` per
    item, in a fixed number of statements however many items there are.

    ``facts`` are the leads' facts as read before this run stored anything. A lead may
    appear several times (one item per event): each item is scored as the lead stood after
    that event — its profile, and the engagements held before plus those its item and the
    earlier items added. Once a lead is an MQL it stays one: ``became_mql`` is true only on
    the first crossing, so routing never receives a second MQL for the same lead. The
    caller holds the leads' locks.
    """
    if not items:
        return []
    rules = await current_rules(session)
    lead_ids = dict.fromkeys(item.lead_id for item in items)
    engagements = {lead_id: list(facts.engagements.get(lead_id, ())) for lead_id in lead_ids}
    mql_since = dict(facts.mql_since)
    scored: list[LeadScored] = []
    latest: dict[str, dict[str, Any]] = {}
    for item in items:
        lead_id = item.lead_id
        if item.engagement is not None:
            insort(engagements[lead_id], item.engagement, key=attrgetter("occurred_at"))
        result = score_lead(
            item.profile,
            engagements[lead_id],
            rules.rules,
            now,
            hand_raised_after=facts.recycled_at.get(lead_id),
        )
        mql_at = mql_since.get(lead_id)
        became_mql = mql_at is None and result.meets_threshold
        if became_mql:
            mql_at = mql_since[lead_id] = now
        explanation = list(result.explanation)
        latest[lead_id] = {
            "lead_id": lead_id,
            "score": result.score,
            "fit": result.fit,
            "engagement": result.engagement,
            "grade": result.grade,
            "fit_grade": result.fit_grade,
            "engagement_level": result.engagement_level,
            "mql": mql_at is not None,
            "mql_at": mql_at,
            "explanation": [factor.model_dump() for factor in explanation],
            "rules_version": rules.version,
            "scored_at": now,
        }
        scored.append(
            LeadScored(
                lead_id=lead_id,
                score=result.score,
                fit=result.fit,
                engagement=result.engagement,
                grade=result.grade,
                fit_grade=result.fit_grade,
                engagement_level=result.engagement_level,
                mql=mql_at is not None,
                became_mql=became_mql,
                explanation=explanation,
                rules_version=rules.version,
                scored_at=now,
            )
        )
    await LeadRepository(session).store_scores(latest.values())
    # Each lead.scored continues its own event's trace, as a per-event handler's would.
    traceparents = [child_traceparent(item.traceparent) for item in items]
    await outbox.add_many(session, scored, traceparents=traceparents)
    return scored
