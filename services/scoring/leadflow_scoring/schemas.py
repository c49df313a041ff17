"""Response bodies of scoring's HTTP API (the request body of PUT is :class:`ScoringRules`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from leadflow_scoring.rules import ScoringRules
from leadflow_shared.events import ScoreFactor


class ScoreOut(BaseModel):
    lead_id: str
    score: int
    fit: int
    engagement: int
    grade: str
    mql: bool
    explanation: list[ScoreFactor]
    rules_version: int
    scored_at: datetime


class RulesVersionOut(BaseModel):
    version: int
    rules: ScoringRules
    created_at: datetime
    created_by: str
