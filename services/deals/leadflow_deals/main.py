"""deals' app: ``leadflow_deals.main:create_app`` (a factory; there is no module-level app)."""

from __future__ import annotations

from dataclasses import replace

from fastapi import FastAPI

from leadflow_deals.api import deals, forecast, quotas
from leadflow_deals.handlers import build_handlers
from leadflow_deals.models import Base, messaging
from leadflow_deals.settings import DealsSettings
from leadflow_shared.service import ServiceSpec, create_service_app

SOURCE = "leadflow/deals"

SPEC = ServiceSpec(
    name="deals",
    package="leadflow_deals",
    metadata=Base.metadata,
    tables=messaging,
    routers=[deals.router, quotas.router, forecast.router],
    handlers=build_handlers(source=SOURCE, default_currency="USD"),
    description="Opens a deal when an AE is assigned, moves it through the pipeline, "
    "closes it won or lost, and forecasts against quotas.",
)


def create_app(settings: DealsSettings | None = None) -> FastAPI:
    settings = settings or DealsSettings()
    handlers = build_handlers(source=SOURCE, default_currency=settings.default_currency)
    return create_service_app(replace(SPEC, handlers=handlers), settings)
