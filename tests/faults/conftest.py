"""Fault tests: each starts a system of its own (PostgreSQL databases of its own, the
embedded broker unless ``KAFKA_BOOTSTRAP_SERVERS`` is set), supervised as ``leadflow up``
supervises it, so it can be hurt without disturbing the other tests."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.supervisor import RestartPolicy, Supervisor
from leadflow_launcher.system import SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.settings import DEV_JWT_SECRET
from tests.helpers import pg_admin


@dataclass
class Supervised:
    system: System
    supervisor: Supervisor
    said: list[str]

    def url(self, service: str) -> str:
        return self.system.url(service)

    @property
    def urls(self) -> dict[str, str]:
        return {s.name: self.system.url(s.name) for s in SERVICES}


@pytest.fixture
def supervised_system(
    infrastructure: tuple[str | None, str], tmp_path: Path
) -> Iterator[Callable[[dict[str, str]], Supervised]]:
    """``start(extra_env)`` → a running, supervised system with the demo organisation and
    no daily cap on the SDRs; stopped and its databases dropped after the test."""
    bootstrap, admin_dsn = infrastructure
    run = secrets.token_hex(4)
    databases = {s.name: f"leadflow_fault_{run}_{s.env_suffix.lower()}" for s in SERVICES}
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    started: list[System] = []
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(extra_env: dict[str, str] | None = None) -> Supervised:
        asyncio.run(pg_admin(admin_dsn, [f'CREATE DATABASE "{db}"' for db in databases.values()]))
        env = {
            **{f"DATABASE_URL_{s.env_suffix}": f"{base}/{databases[s.name]}" for s in SERVICES},
            "LEADFLOW_ROUTING_TIMER_INTERVAL_S": "0.5",
            "LEADFLOW_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "LEADFLOW_WEBHOOKS_RETRY_SCHEDULE_S": "[0.2, 0.5]",
            **(extra_env or {}),
        }
        if bootstrap:
            env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        system = System(
            data_dir=tmp_path,
            ports={s.name: free_port() for s in SERVICES},
            broker_port=free_port(),
            env=env,
        )
        started.append(system)
        system.start(ready_timeout_s=120)
        said: list[str] = []
        supervised = Supervised(
            system,
            Supervisor(
                system, RestartPolicy(backoff_initial_s=0.5, backoff_max_s=2), say=said.append
            ),
            said,
        )
        admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin")
        load_demo(supervised.urls, admin, tmp_path)
        lift_daily_capacity(supervised.url("routing"), admin)

        def watch() -> None:
            while not stop.wait(0.2):
                supervised.supervisor.poll()

        thread = threading.Thread(target=watch, name="supervisor", daemon=True)
        thread.start()
        threads.append(thread)
        return supervised

    try:
        yield start
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)
        for system in started:
            system.stop()
        if started:
            asyncio.run(
                pg_admin(
                    admin_dsn,
                    [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in databases.values()],
                )
            )
