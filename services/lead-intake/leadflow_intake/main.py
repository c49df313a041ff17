"""lead-intake's app: ``uvicorn --factory leadflow_intake.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow_intake.api import accounts, engagements, forms, imports, leads
from leadflow_intake.capture_batcher import start_capture_batcher, stop_capture_batcher
from leadflow_intake.handlers import handlers
from leadflow_intake.import_worker import start_import_worker, stop_import_worker
from leadflow_intake.models import Base, messaging
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="lead-intake",
    package="leadflow_intake",
    metadata=Base.metadata,
    tables=messaging,
    # imports before leads: /v1/leads/import must not match /v1/leads/{lead_id}.
    routers=[imports.router, leads.router, engagements.router, forms.router, accounts.router],
    handlers=handlers,
    on_start=[start_capture_batcher, start_import_worker],
    on_stop=[stop_capture_batcher, stop_import_worker],
    description="Captures leads (JSON API, browser forms, CSV) and engagements.",
)


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or IntakeSettings())
