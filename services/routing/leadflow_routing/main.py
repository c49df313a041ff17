"""routing's app: ``uvicorn --factory leadflow_routing.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from leadflow_routing.api import leads, reps, rules, simulate, waiting
from leadflow_routing.handlers import handlers
from leadflow_routing.models import Base, messaging
from leadflow_routing.settings import RoutingSettings
from leadflow_routing.sla import SlaTimer
from leadflow_shared.service import ServiceRuntime, ServiceSpec, create_service_app


async def _start_timer(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    assert isinstance(settings, RoutingSettings)
    timer = SlaTimer(runtime.db, settings.timer_interval_s)
    runtime.state["sla_timer"] = timer
    timer.start()


async def _stop_timer(runtime: ServiceRuntime) -> None:
    timer = runtime.state.get("sla_timer")
    if isinstance(timer, SlaTimer):
        await timer.stop()


SPEC = ServiceSpec(
    name="routing",
    package="leadflow_routing",
    metadata=Base.metadata,
    tables=messaging,
    routers=[reps.router, rules.router, simulate.router, waiting.router, leads.router],
    handlers=handlers,
    on_start=[_start_timer],
    on_stop=[_stop_timer],
    description="Routes MQLs to SDRs, qualified leads to AEs, won accounts to AMs; explains why.",
)


def create_app(settings: RoutingSettings | None = None) -> FastAPI:
    return create_service_app(SPEC, settings or RoutingSettings())
