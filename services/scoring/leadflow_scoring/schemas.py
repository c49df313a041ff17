"""Response bodies of scoring's HTTP API (the request body of PUT is :class:`ScoringRules`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from leadflow_scoring.rules import ScoringRules
from leadflow_shared.events import ScoreFactor


class ScoreOut(BaseModel):
    lead_id: str
    score: int
    fit: int
    engagement: int
    grade: str
    fit_grade: str | None = Field(
        default=None, description="A-D from the fit points; null on scores from before v2"
    )
    engagement_level: int | None = Field(
        default=None, description="1-4 from the engagement points; null before v2"
    )
    mql: bool
    explanation: list[ScoreFactor]
    rules_version: int
    scored_at: datetime


class RulesVersionOut(BaseModel):
    version: int
    rules: ScoringRules
    created_at: datetime
    created_by: str
