"""Cross-service tests: the real broker, PostgreSQL and every service as its own process.

Broker: the embedded Tansu broker on a free port, or ``KAFKA_BOOTSTRAP_SERVERS`` when set.
Databases: a fresh PostgreSQL database per service per run (``LEADFLOW_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432``), dropped afterwards. With
``LEADFLOW_TESTCONTAINERS=1`` and a Docker engine, ``apache/kafka`` and PostgreSQL are
started by testcontainers instead (not possible on machines without a Docker engine).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadflow_launcher.demo import load_demo
from leadflow_launcher.system import SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_webhooks.testing import Receiver, start_receiver
from tests.helpers import pg_admin


def _testcontainers() -> Iterator[tuple[str, str]]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer

    with KafkaContainer("apache/kafka:3.8.0") as kafka, PostgresContainer("postgres:15") as pg:
        dsn = pg.get_connection_url().replace("postgresql+psycopg2", "postgresql")
        yield kafka.get_bootstrap_server(), dsn


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[tuple[str | None, str]]:
    """(bootstrap servers or None for the embedded broker, PostgreSQL admin DSN)."""
    if os.environ.get("LEADFLOW_TESTCONTAINERS") == "1":
        yield from _testcontainers()
        return
    yield (
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS"),
        os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )


@pytest.fixture(scope="session")
def receiver() -> Iterator[Receiver]:
    """A sales tool stand-in on 127.0.0.1 that records every webhook it receives."""
    r = start_receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="session")
def system(
    infrastructure: tuple[str | None, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    bootstrap, admin_dsn = infrastructure
    run = secrets.token_hex(4)
    databases = {s.name: f"leadflow_it_{run}_{s.env_suffix.lower()}" for s in SERVICES}
    asyncio.run(pg_admin(admin_dsn, [f'CREATE DATABASE "{db}"' for db in databases.values()]))
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    env: dict[str, str] = {
        f"DATABASE_URL_{s.env_suffix}": f"{base}/{databases[s.name]}" for s in SERVICES
    }
    env.update(
        {
            "LEADFLOW_ROUTING_TIMER_INTERVAL_S": "0.5",
            "LEADFLOW_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "LEADFLOW_WEBHOOKS_RETRY_SCHEDULE_S": "[0.2, 0.5]",
            "LEADFLOW_LOG_LEVEL": "INFO",
        }
    )
    if bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    data_dir: Path = tmp_path_factory.mktemp("leadflow")
    system = System(
        data_dir=data_dir,
        ports={s.name: free_port() for s in SERVICES},
        broker_port=free_port(),
        env=env,
        partitions=4,
    )
    try:
        system.start(ready_timeout_s=120)
        admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin")
        load_demo({s.name: system.url(s.name) for s in SERVICES}, admin, data_dir)
        yield system
    finally:
        system.stop()
        logs = data_dir / "logs"
        if logs.exists():
            for log in sorted(logs.glob("*.log")):
                text = log.read_text(errors="replace")
                if '"level": "error"' in text or "Traceback" in text:
                    print(f"--- {log.name} (errors) ---\n{text[-4000:]}")
        asyncio.run(
            pg_admin(
                admin_dsn,
                [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in databases.values()],
            )
        )


@pytest.fixture(scope="session")
def urls(system: System) -> dict[str, str]:
    return {s.name: system.url(s.name) for s in SERVICES}


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        item.add_marker(pytest.mark.integration)
