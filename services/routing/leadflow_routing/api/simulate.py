"""``POST /v1/routing/simulate``: a draft rule set replayed over past MQLs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from leadflow_routing.assignment import lead_attributes
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.rules.document import RuleSet
from leadflow_routing.simulation import PastLead, simulate
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/routing/simulate", tags=["rules"])
Manager = Annotated[Principal, Depends(require_roles("manager"))]


class SimulationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: RuleSet
    limit: int = Field(default=1000, ge=1, le=20_000)


@router.post("")
async def simulate_rules(
    body: SimulationRequest, session: SessionDep, principal: Manager
) -> dict[str, Any]:
    """Who would have received which of the last ``limit`` MQLs, against who did."""
    repo = RoutingRepository(session)
    reps = [rep for rep in await repo.all_reps() if rep.role == "sdr"]
    past = [
        PastLead(lead.id, lead_attributes(lead), lead.captured_at or lead.updated_at, lead.sdr)
        for lead in await repo.mql_leads(body.limit)
    ]
    return asdict(simulate(body.rules, reps, past))
