"""``GET /v1/sla`` (breaches, newest first) and ``GET /v1/load`` (open work per rep)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from leadflow_console.api.deps import Manager, Window
from leadflow_console.repository import DealRepository, JourneyRepository, SlaRepository
from leadflow_console.schemas import (
    AeLoad,
    AmLoad,
    Load,
    SdrLoad,
    SlaBreaches,
    SlaBreachOut,
)
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["reps"])


@router.get("/sla", response_model=SlaBreaches)
async def get_sla_breaches(
    session: SessionDep,
    principal: Manager,
    window: Window,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SlaBreaches:
    """SLA breaches in ``[from, to)`` (by breach time), newest first."""
    total, rows = await SlaRepository(session).newest(limit, window.start, window.end)
    return SlaBreaches(
        total=total,
        breaches=[
            SlaBreachOut(
                lead_id=r.lead_id,
                role=r.role,
                owner=r.owner,
                sla_due_at=r.sla_due_at,
                breached_at=r.breached_at,
            )
            for r in rows
        ],
    )


@router.get("/load", response_model=Load)
async def get_load(session: SessionDep, principal: Manager) -> Load:
    """Open leads per SDR, open deals per AE, accounts per AM; the busiest first."""
    journeys = JourneyRepository(session)
    return Load(
        sdr=[
            SdrLoad(rep=rep, open_leads=n, awaiting_acceptance=waiting)
            for rep, n, waiting in await journeys.open_leads_per_sdr()
        ],
        ae=[
            AeLoad(rep=rep, open_deals=n)
            for rep, n in await DealRepository(session).open_deals_per_ae()
        ],
        am=[AmLoad(rep=rep, accounts=n) for rep, n in await journeys.accounts_per_am()],
    )
