"""``POST /v1/scoring/rules/preview``: what a draft rules document would change, before it is
saved — every known lead scored under the rules in force and under the draft, with the same
facts at the same moment, so the difference is the rules' alone. Nothing is stored."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import LeadProfileRow
from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.rules import ScoringRules
from leadflow_scoring.rules_versions import current_rules
from leadflow_scoring.scoring import ScoreResult, score_lead

CHUNK = 1000


@dataclass
class Side:
    """One rules document's figures over the leads previewed."""

    mql: int = 0
    grades: Counter[str] = field(default_factory=Counter)
    fit_grades: Counter[str] = field(default_factory=Counter)
    engagement_levels: Counter[int] = field(default_factory=Counter)

    def add(self, result: ScoreResult) -> None:
        self.mql += result.meets_threshold
        self.grades[result.grade] += 1
        self.fit_grades[result.fit_grade] += 1
        self.engagement_levels[result.engagement_level] += 1

    def out(self) -> dict[str, Any]:
        return {
            "mql": self.mql,
            "grades": dict(sorted(self.grades.items())),
            "fit_grades": dict(sorted(self.fit_grades.items())),
            "engagement_levels": {str(k): v for k, v in sorted(self.engagement_levels.items())},
        }


def _view(result: ScoreResult) -> dict[str, Any]:
    return {
        "score": result.score,
        "grade": result.grade,
        "fit_grade": result.fit_grade,
        "engagement_level": result.engagement_level,
        "mql": result.meets_threshold,
    }


async def preview(
    session: AsyncSession, draft: ScoringRules, now: datetime, *, limit: int, sample: int
) -> dict[str, Any]:
    """Score up to ``limit`` leads (by id) under the rules in force and ``draft``."""
    in_force = await current_rules(session)
    repo = LeadRepository(session)
    current, proposed = Side(), Side()
    leads = changed = becomes_mql = stops_mql = 0
    examples: list[dict[str, Any]] = []
    after: str | None = None
    while leads < limit:
        query = select(LeadProfileRow.lead_id).order_by(LeadProfileRow.lead_id)
        if after is not None:
            query = query.where(LeadProfileRow.lead_id > after)
        ids = list((await session.scalars(query.limit(min(CHUNK, limit - leads)))).all())
        if not ids:
            break
        after = ids[-1]
        profiles = await repo.fit_profiles(ids)
        facts = await repo.facts(ids)
        for lead_id in ids:
            if lead_id in facts.erased or lead_id not in profiles:
                continue
            engagements = facts.engagements.get(lead_id, [])
            since = facts.recycled_at.get(lead_id)
            now_result = score_lead(
                profiles[lead_id], engagements, in_force.rules, now, hand_raised_after=since
            )
            draft_result = score_lead(
                profiles[lead_id], engagements, draft, now, hand_raised_after=since
            )
            leads += 1
            current.add(now_result)
            proposed.add(draft_result)
            becomes_mql += draft_result.meets_threshold and not now_result.meets_threshold
            stops_mql += now_result.meets_threshold and not draft_result.meets_threshold
            if _view(now_result) != _view(draft_result):
                changed += 1
                if len(examples) < sample:
                    examples.append(
                        {
                            "lead_id": lead_id,
                            "current": _view(now_result),
                            "draft": _view(draft_result),
                        }
                    )
    more = after is not None and (
        await session.scalar(
            select(LeadProfileRow.lead_id).where(LeadProfileRow.lead_id > after).limit(1)
        )
        is not None
    )
    return {
        "leads": leads,
        "complete": not more,
        "rules_version": in_force.version,
        "at": now,
        "current": current.out(),
        "draft": proposed.out(),
        "changed": changed,
        "would_become_mql": becomes_mql,
        "would_stop_meeting_mql_rule": stops_mql,
        "sample": examples,
    }
