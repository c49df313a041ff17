"""``GET /v1/topics``: offsets, rates, consumer lag and dead letters, read from the broker."""

from __future__ import annotations

from fastapi import APIRouter

from leadflow_console.api.deps import Manager
from leadflow_console.broker.watch import broker_watch
from leadflow_console.schemas import TopicsReport
from leadflow_shared.errors import problem_responses
from leadflow_shared.service import Runtime

router = APIRouter(prefix="/v1", tags=["topics"])


@router.get(
    "/topics",
    response_model=TopicsReport,
    responses=problem_responses(503, s503="broker disabled, unreachable or too slow"),
)
async def get_topics(runtime: Runtime, principal: Manager) -> TopicsReport:
    """Every topic and dead-letter topic with end offsets, rate and lag per consumer group."""
    return await broker_watch(runtime).report()
