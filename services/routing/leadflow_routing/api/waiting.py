"""``GET /v1/routing/waiting``: leads nobody could take yet, and why — never a silent wait."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from leadflow_routing.repository import WAITING, RoutingRepository
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import problem_responses
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/routing/waiting", tags=["rules"])
Manager = Annotated[Principal, Depends(require_roles("manager"))]
ROLE_OF = {status: role for role, status in WAITING.items()}


class WaitingLead(BaseModel):
    lead_id: str
    role: str
    status: str
    company: str | None
    score: int | None
    waiting_since: datetime | None
    reason: str | None
    skipped: dict[str, str]


@router.get(
    "",
    response_model=list[WaitingLead],
    responses=problem_responses(403, s403="not a manager"),
)
async def list_waiting(
    session: SessionDep,
    principal: Manager,
    role: Literal["sdr", "ae", "am"] | None = Query(default=None),
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[WaitingLead]:
    """Leads waiting for a free rep (the ``limit`` oldest leads, longest waiting first),
    each with the reason it waits and who was skipped why; the timer and every directory
    change retry them."""
    repo = RoutingRepository(session)
    statuses = (WAITING[role],) if role else tuple(WAITING.values())
    leads = await repo.waiting_leads(statuses, limit)
    why = await repo.last_waits([lead.id for lead in leads])
    out = [
        WaitingLead(
            lead_id=lead.id,
            role=ROLE_OF[lead.status],
            status=lead.status,
            company=lead.company,
            score=lead.score,
            waiting_since=why[lead.id].at if lead.id in why else None,
            reason=why[lead.id].reason if lead.id in why else None,
            skipped=why[lead.id].skipped if lead.id in why else {},
        )
        for lead in leads
    ]
    return sorted(out, key=lambda w: (w.waiting_since is None, w.waiting_since or datetime.max))
