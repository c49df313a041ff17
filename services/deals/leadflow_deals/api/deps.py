"""Who may call deals' API, and the typed settings of the running service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from leadflow_deals.settings import DealsSettings
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.service import Runtime

# AEs work their own deals; managers and admins see every deal.
DealWorker = Annotated[Principal, Depends(require_roles("ae", "manager"))]
QuotaSetter = Annotated[Principal, Depends(require_roles("manager"))]

REP_ID_PATTERN = r"^[A-Za-z0-9_.:@\-]+$"
RepIdPath = Annotated[str, Path(min_length=1, max_length=100, pattern=REP_ID_PATTERN)]
DealIdPath = Annotated[str, Path(min_length=1, max_length=64)]


async def _settings(runtime: Runtime) -> DealsSettings:
    settings = runtime.settings
    assert isinstance(settings, DealsSettings)
    return settings


Settings = Annotated[DealsSettings, Depends(_settings)]
