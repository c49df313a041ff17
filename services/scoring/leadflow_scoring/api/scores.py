"""``/v1/scores``: a lead's latest score with its explanation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from leadflow_scoring.repository import LeadRepository
from leadflow_scoring.schemas import ScoreOut
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import Forbidden, NotFound, problem_responses
from leadflow_shared.events import ScoreFactor
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/scores", tags=["scores"])

REPS = frozenset({"sdr", "ae", "am"})
Reader = Annotated[Principal, Depends(require_roles("manager", "integration", *REPS))]
LeadId = Annotated[str, Path(max_length=64)]


@router.get("/{lead_id}", response_model=ScoreOut, responses=problem_responses(404))
async def get_score(lead_id: LeadId, session: SessionDep, principal: Reader) -> ScoreOut:
    """Managers, admins and integrations read every score; a rep only their own lead's."""
    repo = LeadRepository(session)
    row = await repo.score(lead_id)
    if row is None:
        raise NotFound(f"no score for lead {lead_id} (unknown, not profiled yet, or erased)")
    if principal.role in REPS:
        owners = await repo.owners(lead_id)
        if owners.get(principal.role) != principal.sub:
            raise Forbidden(f"lead {lead_id} is not assigned to you as {principal.role}")
    return ScoreOut(
        lead_id=row.lead_id,
        score=row.score,
        fit=row.fit,
        engagement=row.engagement,
        grade=row.grade,
        fit_grade=row.fit_grade,
        engagement_level=row.engagement_level,
        mql=row.mql,
        explanation=[ScoreFactor.model_validate(item) for item in row.explanation],
        rules_version=row.rules_version,
        scored_at=row.scored_at,
    )
