"""lead-intake's app: ``uvicorn leadflow_intake.main:app``."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow_intake.api import engagements, forms, imports, leads
from leadflow_intake.handlers import handlers
from leadflow_intake.models import Base, messaging
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="lead-intake",
    package="leadflow_intake",
    metadata=Base.metadata,
    tables=messaging,
    # imports before leads: /v1/leads/import must not match /v1/leads/{lead_id}.
    routers=[imports.router, leads.router, engagements.router, forms.router],
    handlers=handlers,
    description="Captures leads (JSON API, browser forms, CSV) and engagements.",
)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or IntakeSettings())
