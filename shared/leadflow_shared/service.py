"""The service runtime and app factory every leadflow service is built with.

Start-up: logging, migrations, producer, outbox relay, consumers, the service's own
background tasks. Shutdown (SIGTERM via uvicorn): stop fetching, finish in-flight work,
commit offsets, flush the outbox, close connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared import failpoints
from leadflow_shared.db import Database
from leadflow_shared.errors import NotFound, RejectNulInPath, install_error_handlers
from leadflow_shared.messaging import (
    EventConsumer,
    HandlerRegistry,
    MessagingTables,
    Outbox,
    OutboxRelay,
    new_producer,
)
from leadflow_shared.messaging.housekeeping import Housekeeper
from leadflow_shared.migrations import upgrade_to_head
from leadflow_shared.observability import TracingMiddleware, configure_logging, log_fields
from leadflow_shared.settings import ServiceSettings

log = logging.getLogger(__name__)

Hook = Callable[["ServiceRuntime"], Awaitable[None]]


@dataclass
class ServiceSpec:
    """What makes one service: its name, schema, routes, handlers and extra tasks."""

    name: str
    package: str
    metadata: MetaData
    tables: MessagingTables
    routers: Sequence[APIRouter]
    handlers: HandlerRegistry | None = None
    on_start: Sequence[Hook] = ()
    on_stop: Sequence[Hook] = ()
    description: str = ""


class Readiness(BaseModel):
    """``/readyz``: 200 when ``ready`` or ``degraded`` (serving, with ``reasons``: the
    broker or a consumer is away), 503 ``not_ready`` (not started, or no database)."""

    status: Literal["ready", "degraded", "not_ready"]
    checks: dict[str, bool]
    reasons: list[str] = []


@dataclass
class ServiceRuntime:
    """Everything a route or handler of the running service may need."""

    spec: ServiceSpec
    settings: ServiceSettings
    db: Database
    outbox: Outbox
    producer: AIOKafkaProducer | None = None
    relay: OutboxRelay | None = None
    consumers: list[EventConsumer] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    started: bool = False

    async def readiness(self) -> Readiness:
        """Ready, degraded or not ready, with the failing checks and why.

        Not ready (503) when the service cannot do its work: not started, or its database
        does not answer. Degraded (200, still taking requests) when only the broker or a
        consumer is away: writes go on into the outbox and are published when the broker
        returns, so intake keeps accepting leads through a broker outage.
        """
        try:  # a database that does not answer (e.g. a black-holed connect) is not ready
            database = await asyncio.wait_for(self.db.ping(), timeout=3)
        except TimeoutError:
            database = False
        checks = {"database": database}
        reasons: list[str] = []
        if self.settings.kafka_enabled:
            checks["broker"] = self.producer is not None and await _broker_reachable(self.producer)
            checks["consumers"] = all(c.running for c in self.consumers)
            if not checks["broker"]:
                waiting = ""
                if self.relay is not None and checks["database"]:
                    waiting = f" ({await self.relay.unsent()} waiting)"
                reasons.append(
                    "broker unreachable: events wait in the outbox and are published "
                    f"when it is back{waiting}"
                )
            if not checks["consumers"]:
                reasons.append("a consumer is not running: events wait on the broker")
        checks["started"] = self.started
        if not checks["database"]:
            reasons.append("database unreachable")
        if not checks["started"]:
            reasons.append("starting or stopping")
        if all(checks.values()):
            status = "ready"
        elif checks["database"] and checks["started"]:
            status = "degraded"
        else:
            status = "not_ready"
        return Readiness(status=status, checks=checks, reasons=reasons)


async def _broker_reachable(producer: AIOKafkaProducer) -> bool:
    try:
        await asyncio.wait_for(producer.client.fetch_all_metadata(), timeout=2)
        return True
    except Exception:
        return False


async def _start_producer(settings: ServiceSettings, name: str) -> AIOKafkaProducer:
    delay = 0.2
    for attempt in range(60):
        producer = new_producer(settings.kafka_bootstrap_servers, client_id=name)
        try:
            await producer.start()
            return producer
        except Exception as exc:
            await producer.stop()
            log.warning(
                "broker not reachable yet",
                extra=log_fields(attempt=attempt + 1, error_type=type(exc).__name__),
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    raise RuntimeError(f"broker {settings.kafka_bootstrap_servers} unreachable")


def create_service_app(spec: ServiceSpec, settings: ServiceSettings) -> FastAPI:
    """Build a service's FastAPI app with health, metrics, errors, tracing and lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(spec.name, settings.log_level)
        failpoints.configure(spec.name, settings.data_dir)
        runtime: ServiceRuntime = app.state.runtime
        await upgrade_to_head(runtime.db, spec.package)
        if settings.kafka_enabled:
            runtime.producer = await _start_producer(settings, spec.name)
            runtime.relay = OutboxRelay(
                runtime.db,
                spec.tables,
                runtime.producer,
                poll_interval_s=settings.outbox_poll_interval_s,
            )
            if settings.broker_epoch:
                await runtime.relay.adopt_broker_epoch(settings.broker_epoch)
            runtime.relay.start()
        housekeeper = Housekeeper(
            runtime.db,
            spec.tables,
            outbox_retention_s=settings.outbox_retention_hours * 3600,
            processed_retention_s=settings.processed_retention_days * 86400,
        )
        housekeeper.start()
        # Hooks run before consumers start, so handlers find what hooks prepare.
        for hook in spec.on_start:
            await hook(runtime)
        if runtime.producer is not None and spec.handlers is not None and spec.handlers.topics:
            consumer = EventConsumer(
                name=spec.name,
                bootstrap_servers=settings.kafka_bootstrap_servers,
                db=runtime.db,
                tables=spec.tables,
                producer=runtime.producer,
                handlers=spec.handlers,
                dlq_topic=settings.dlq_topic,
                fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                idle_fetch_max_wait_ms=settings.kafka_fetch_idle_wait_ms,
                max_attempts=settings.consumer_max_attempts,
                retry_base_ms=settings.consumer_retry_base_ms,
                max_batch=settings.consumer_max_batch,
                bulk_per_batch=settings.consumer_bulk_per_batch,
                bulk_rate_per_s=settings.consumer_bulk_rate_per_s or None,
                commit_interval_s=settings.consumer_commit_interval_s,
            )
            await consumer.start()
            runtime.consumers.append(consumer)
        runtime.started = True
        log.info("service started", extra=log_fields(database=runtime.db.engine.dialect.name))
        try:
            yield
        finally:
            runtime.started = False
            for consumer in runtime.consumers:
                await consumer.stop()
            for hook in spec.on_stop:
                await hook(runtime)
            if runtime.relay is not None:
                await runtime.relay.stop()
            await housekeeper.stop()
            if runtime.producer is not None:
                await runtime.producer.stop()
            await runtime.db.dispose()
            log.info("service stopped")

    app = FastAPI(
        title=f"leadflow {spec.name}",
        description=spec.description,
        version="1.0.0",
        lifespan=lifespan,
        # Served by _docs_router from bundled assets: FastAPI's pages load theirs from a CDN
        # and are blank offline.
        docs_url=None,
        redoc_url=None,
    )
    db = Database(settings.database_url)
    app.state.runtime = ServiceRuntime(
        spec=spec, settings=settings, db=db, outbox=Outbox(spec.tables, f"leadflow/{spec.name}")
    )
    app.add_middleware(TracingMiddleware)
    app.add_middleware(RejectNulInPath)
    install_error_handlers(app)
    app.include_router(_health_router())
    app.include_router(_docs_router(app.title))
    for router in spec.routers:
        app.include_router(router)
    return app


# The API pages' assets, from the fastapi-offline wheel (Swagger UI and ReDoc builds, MIT).
_DOCS_ASSETS: dict[str, str] = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
_ASSETS = "/docs/assets"


@cache
def _docs_asset(name: str) -> bytes:
    return resources.files("fastapi_offline").joinpath("static", name).read_bytes()


def _docs_router(title: str) -> APIRouter:
    """``/docs`` (Swagger UI) and ``/redoc`` with their scripts served by the service itself:
    nothing is fetched from outside, so the pages work on a machine without internet."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} — API",
            swagger_js_url=f"{_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{_ASSETS}/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @router.get("/docs/oauth2-redirect")
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{title} — API",
            redoc_js_url=f"{_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{_ASSETS}/favicon.png",
            with_google_fonts=False,
        )

    @router.get(_ASSETS + "/{name}")
    async def docs_asset(name: str) -> Response:
        media_type = _DOCS_ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no asset {name}")
        return Response(
            _docs_asset(name),
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return router


def _health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(request: Request) -> JSONResponse:
        readiness = await runtime_of(request).readiness()
        return JSONResponse(
            status_code=503 if readiness.status == "not_ready" else 200,
            content=readiness.model_dump(),
        )

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


_READ_METHODS = frozenset({"GET", "HEAD"})


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    # A GET may read a lot (reports, lists): on SQLite its statements run off the event
    # loop's thread, so a long query never stalls the consumers beside it (db.Database).
    off_loop = request.method in _READ_METHODS
    async with runtime_of(request).db.transaction(off_loop=off_loop) as session:
        yield session


async def _runtime(request: Request) -> ServiceRuntime:
    # An async dependency: FastAPI runs a plain ``def`` one in its thread pool, a thread
    # hand-off on every request (py-spy on lead-intake, docs/benchmarks.md).
    return runtime_of(request)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
# Function scope: the transaction commits when the route returns, before the response
# is sent, so a client that got a 2xx can read what it wrote.
SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
