"""``GET /v1/funnel``: the funnel of the leads captured in a window."""

from __future__ import annotations

from fastapi import APIRouter

from leadflow_console.api.deps import Manager, Window
from leadflow_console.funnel import compute_funnel
from leadflow_console.repository import JourneyRepository
from leadflow_console.schemas import Funnel
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1", tags=["funnel"])


@router.get("/funnel", response_model=Funnel)
async def get_funnel(session: SessionDep, principal: Manager, window: Window) -> Funnel:
    """Counts, conversion and time between stages for leads captured in ``[from, to)``."""
    rows = await JourneyRepository(session).cohort(window.start, window.end)
    return compute_funnel(rows, window_from=window.start, window_to=window.end)
