"""SQL statements and CPU per event on scoring's and deals' hot paths (docs/benchmarks.md).

Runs a service's handlers in-process through the consumer's own batch step
(``apply_batch``: one transaction, one dedup statement, runs of one type to ``on_batch``
handlers) on SQLite or PostgreSQL, without Kafka, and reports per scenario the statements
sent to the database (every ``before_cursor_execute``: dedup included, housekeeping not)
and the process CPU per event (``time.process_time``: the event loop and the driver's
thread, not the PostgreSQL server):

- ``single``: batches of one event, one transaction each;
- ``batch``: batches of 100 events, as a busy consumer fetches them.

Each scenario runs ``--repeat`` times on fresh leads; the lowest CPU is reported (the
machine is shared: the minimum is the least disturbed run).

    .venv/bin/python services/scoring/bench/hot_paths.py --database sqlite
    .venv/bin/python services/scoring/bench/hot_paths.py --database postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from fastapi import FastAPI
from sqlalchemy import event as sa_event

from leadflow_deals.main import create_app as create_deals
from leadflow_deals.settings import DealsSettings
from leadflow_scoring.main import create_app as create_scoring
from leadflow_scoring.settings import ScoringSettings
from leadflow_shared.events import (
    CloudEvent,
    EngagementRecorded,
    EventData,
    LeadAssigned,
    LeadCaptured,
    LeadReassigned,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging.consumer import Delivered, apply_batch
from leadflow_shared.observability import child_traceparent
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.settings import DEV_JWT_SECRET

EVENTS = 500
BATCH = 100
PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/{db}"
Scenario = Callable[[list[str]], list[EventData]]


def captured(lead_id: str, n: int) -> LeadCaptured:
    return LeadCaptured(
        lead_id=lead_id,
        email=f"lead{n}@example.com",
        company=f"Company {n}",
        title="VP Marketing" if n % 2 else "Student",
        country="US",
        employees=50 + n,
        source="web",
        utm={"source": "google"},
        captured_at=utcnow(),
    )


def engagement(lead_id: str, n: int) -> EngagementRecorded:
    return EngagementRecorded(
        lead_id=lead_id,
        engagement_id=new_id(),
        type="pricing_page_view" if n % 2 else "email_open",
        occurred_at=utcnow() - timedelta(hours=n % 48),
    )


def assigned(lead_id: str, role: str, owner: str) -> LeadAssigned:
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "role": role,
            "owner": owner,
            "rule": "r",
            "strategy": "round_robin",
            "reason": "bench",
            "company": "Acme",
        }
    )


def reassigned(lead_id: str, role: str, owner: str) -> LeadReassigned:
    return LeadReassigned.model_validate(
        {"lead_id": lead_id, "role": role, "previous_owner": None, "owner": owner, "reason": "x"}
    )


@asynccontextmanager
async def started(
    create_app: Callable[..., FastAPI], settings_cls: Any, url: str
) -> AsyncIterator[ServiceRuntime]:
    settings = settings_cls(kafka_enabled=False, database_url=url, jwt_secret=DEV_JWT_SECRET)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app.state.runtime


class StatementCounter:
    def __init__(self, runtime: ServiceRuntime) -> None:
        self.statements = 0
        sa_event.listen(runtime.db.engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("DELETE"):  # housekeeping runs beside the handlers
            self.statements += 1


def delivered(data: EventData) -> Delivered:
    event = CloudEvent(
        id=new_id(),
        type=data.event_type,
        source="leadflow/bench",
        subject=data.lead_id,
        data=data.model_dump(mode="json"),
        traceparent=child_traceparent(None),  # each its own trace, as live leads come
    )
    return Delivered(event, data)


async def measure(
    runtime: ServiceRuntime, counter: StatementCounter, events: Sequence[EventData], batch: int
) -> dict[str, float]:
    registry = runtime.spec.handlers
    assert registry is not None
    processed = runtime.spec.tables.processed_events
    items = [delivered(d) for d in events]
    counter.statements = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        await apply_batch(runtime.db, processed, runtime.spec.name, registry, chunk)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "statements_per_event": round(counter.statements / len(items), 2),
        "cpu_ms_per_event": round(cpu * 1000 / len(items), 3),
        "wall_ms_per_event": round(wall * 1000 / len(items), 3),
    }


async def run_scenarios(
    runtime: ServiceRuntime, scenarios: dict[str, Scenario], repeat: int
) -> dict[str, Any]:
    counter = StatementCounter(runtime)
    results: dict[str, Any] = {}
    for mode, size in (("single", 1), ("batch", BATCH)):
        for _ in range(repeat):
            leads = [new_id() for _ in range(EVENTS)]
            for name, make in scenarios.items():
                key = f"{name} {mode}"
                got = await measure(runtime, counter, make(leads), size)
                best = results.get(key)
                if best is None or got["cpu_ms_per_event"] < best["cpu_ms_per_event"]:
                    results[key] = got
    return results


SCORING: dict[str, Scenario] = {
    "lead.captured (new lead)": lambda leads: [captured(x, n) for n, x in enumerate(leads)],
    "lead.captured (known lead)": lambda leads: [captured(x, n + 1) for n, x in enumerate(leads)],
    "engagement.recorded": lambda leads: [engagement(x, n) for n, x in enumerate(leads)],
    "lead.assigned (owner)": lambda leads: [
        assigned(x, "sdr", f"sdr-{n % 7}") for n, x in enumerate(leads)
    ],
}
DEALS: dict[str, Scenario] = {
    "lead.assigned sdr (ignored)": lambda leads: [assigned(x, "sdr", "sdr-1") for x in leads],
    "lead.assigned ae (opens a deal)": lambda leads: [
        assigned(x, "ae", f"ae-{n % 5}") for n, x in enumerate(leads)
    ],
    "lead.reassigned ae (moves it)": lambda leads: [
        reassigned(x, "ae", f"ae-{n % 3}") for n, x in enumerate(leads)
    ],
}


async def bench(
    create_app: Callable[..., FastAPI],
    settings_cls: Any,
    scenarios: dict[str, Scenario],
    repeat: int,
    url: str,
) -> dict[str, Any]:
    async with started(create_app, settings_cls, url) as runtime:
        return await run_scenarios(runtime, scenarios, repeat)


async def on_database(
    database: str, name: str, run: Callable[[str], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    if database == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            return await run(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite3'}")
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        return await run(PG.format(db=name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    report: dict[str, Any] = {"database": args.database, "events": EVENTS, "batch": BATCH}
    services: dict[str, tuple[Callable[..., FastAPI], Any, dict[str, Scenario]]] = {
        "scoring": (create_scoring, ScoringSettings, SCORING),
        "deals": (create_deals, DealsSettings, DEALS),
    }
    for service, (create_app, settings_cls, scenarios) in services.items():
        run = partial(bench, create_app, settings_cls, scenarios, args.repeat)
        report[service] = await on_database(args.database, f"bench_hot_paths_{service}", run)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
