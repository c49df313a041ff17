"""``GET /v1/system/processes``: what the local supervisor (``leadflow up``) did.

``leadflow up`` restarts a process that dies and keeps its record in
``<data dir>/supervisor.json``; this route shows it (the dashboard's "Processes" panel). In
production an orchestrator supervises instead and the answer says ``supervised: false``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from leadflow_console.api.deps import Manager
from leadflow_shared.service import Runtime

router = APIRouter(prefix="/v1/system", tags=["system"])
STATE_FILE = "supervisor.json"


class ProcessState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pid: int | None = None
    state: str
    restarts: int
    last_exit: dict[str, Any] | None = None


class ProcessesReport(BaseModel):
    supervised: bool
    updated_at: str | None = None
    policy: dict[str, float] | None = None
    processes: dict[str, ProcessState] = {}
    events: list[dict[str, Any]] = []


@router.get("/processes", response_model=ProcessesReport)
async def get_processes(runtime: Runtime, principal: Manager) -> ProcessesReport:
    """Each supervised process with its state and restarts, and the last 100 events
    (exited, restarted, gave_up); ``supervised: false`` when no local supervisor runs."""
    path = runtime.settings.data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return ProcessesReport(supervised=False)
    return ProcessesReport(supervised=True, **{k: v for k, v in raw.items() if k != "supervised"})
