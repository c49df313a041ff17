"""console's app: ``create_app()`` for uvicorn's ``--factory``."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow_console.api import dashboard, funnel, reps, system, topics
from leadflow_console.broker.watch import start_broker_watch, stop_broker_watch
from leadflow_console.handlers import handlers
from leadflow_console.models import Base, messaging
from leadflow_console.settings import ConsoleSettings
from leadflow_shared.service import ServiceSpec, create_service_app

SPEC = ServiceSpec(
    name="console",
    package="leadflow_console",
    metadata=Base.metadata,
    tables=messaging,
    routers=[dashboard.router, topics.router, funnel.router, reps.router, system.router],
    handlers=handlers,
    on_start=[start_broker_watch],
    on_stop=[stop_broker_watch],
    description="The ops dashboard: topics, consumer lag, dead letters, funnel, SLA, load.",
)


def create_app(settings: ConsoleSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or ConsoleSettings())
