"""scoring's app: ``uvicorn --factory leadflow_scoring.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow_scoring.api import rules, scores
from leadflow_scoring.handlers import handlers
from leadflow_scoring.models import Base, messaging
from leadflow_scoring.rules_versions import seed_default_rules
from leadflow_scoring.settings import ScoringSettings
from leadflow_shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="scoring",
    package="leadflow_scoring",
    metadata=Base.metadata,
    tables=messaging,
    routers=[scores.router, rules.router],
    handlers=handlers,
    on_start=[seed_default_rules],
    description="Scores leads (fit + decaying engagement), explains scores, announces MQLs.",
)


def create_app(settings: ScoringSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ScoringSettings())
