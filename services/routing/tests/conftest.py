from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from leadflow_routing.configuration import ROUTING_CONFIG
from leadflow_routing.main import create_app
from leadflow_routing.settings import RoutingSettings
from leadflow_shared.events import LeadCaptured
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import deliver, mql_scored, running_service

PG_ADMIN = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _fresh_config_cache() -> Iterator[None]:
    # Each test's database is new: start every test from a cold cache.
    ROUTING_CONFIG.clear()
    yield
    ROUTING_CONFIG.clear()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceRuntime]]:
    async with running_service(create_app, RoutingSettings, tmp_path, timer_interval_s=3600) as s:
        yield s


async def _pg_admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: SQLite, or PostgreSQL (skipped when none is reachable)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'routing.sqlite3'}"
        return
    name = f"routing_unit_{secrets.token_hex(4)}"
    try:
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"no PostgreSQL at {PG_ADMIN}: {exc}")
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + (
            f"/{name}"
        )
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def any_service(
    database_url: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceRuntime]]:
    """routing on SQLite or PostgreSQL (parametrize ``database_url``), Kafka disabled."""
    settings = RoutingSettings(
        kafka_enabled=False,
        database_url=database_url,
        jwt_secret=DEV_JWT_SECRET,
        timer_interval_s=3600,
    )
    app = create_app(settings)
    runtime: ServiceRuntime = app.state.runtime
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, runtime
    await runtime.db.dispose()


DeliverMqls = Callable[..., Awaitable[list[str]]]


@pytest.fixture
def deliver_mqls() -> DeliverMqls:
    """``await deliver_mqls(runtime, n, country="US")``: n new leads captured and scored as
    MQLs through routing's handlers, one event at a time; returns their ids."""

    async def _deliver(runtime: ServiceRuntime, n: int, country: str = "US") -> list[str]:
        ids = []
        for _ in range(n):
            lead_id = new_id()
            await deliver(
                runtime,
                LeadCaptured(
                    lead_id=lead_id,
                    email="x@y.io",
                    country=country,
                    company="Acme",
                    captured_at=utcnow(),
                ),
            )
            await deliver(
                runtime,
                mql_scored(lead_id),
            )
            ids.append(lead_id)
        return ids

    return _deliver
