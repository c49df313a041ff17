"""What one MQL routing decision costs: SQL statements and CPU, on SQLite or PostgreSQL.

Runs routing's app in-process (Kafka off), loads four SDRs, captures the leads, then hands
``lead.scored`` (MQL) events to the handler the way the consumer does — one transaction per
event (``--batch 1``) or one per batch of events — and reports per decision the statements
sent to the database, the process CPU time and the wall time. The database server's own
CPU is not included (PostgreSQL runs in another process).

    .venv/bin/python services/routing/bench/decision_cost.py --database sqlite
    .venv/bin/python services/routing/bench/decision_cost.py --database postgres --batch 50

To measure another version of routing (e.g. before a change), export it and put it first
on the path: ``git archive <rev> services/routing/leadflow_routing | tar -x -C /tmp/old``,
then ``PYTHONPATH=/tmp/old/services/routing`` before the command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from leadflow_routing.main import create_app
from leadflow_routing.settings import RoutingSettings
from leadflow_shared.events import CloudEvent, EventData, LeadCaptured, LeadScored
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import auth_header, mql_scored

PG_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
MANAGER = auth_header("manager", "bench")


async def _postgres_database(name: str, *, drop: bool = False) -> str:
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if not drop:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def _event(data: EventData) -> CloudEvent:
    return CloudEvent(
        id=new_id(),
        type=data.event_type,
        source="leadflow/bench",
        subject=data.lead_id,
        data=data.model_dump(mode="json"),
    )


async def _deliver_batch(runtime: ServiceRuntime, events: list[EventData]) -> None:
    """As the batch consumer does: one transaction for the whole batch, the event ids
    recorded in one statement, then the handlers called in order."""
    assert runtime.spec.handlers is not None
    envelopes = [_event(data) for data in events]
    now = utcnow()
    async with runtime.db.transaction() as session:
        await session.execute(
            insert(runtime.spec.tables.processed_events),
            [
                {
                    "consumer": runtime.spec.name,
                    "event_id": e.id,
                    "event_type": e.type,
                    "processed_at": now,
                }
                for e in envelopes
            ],
        )
        for envelope, data in zip(envelopes, events, strict=True):
            await runtime.spec.handlers.handle_one(session, envelope, data)


def _scored(lead_id: str) -> LeadScored:
    return mql_scored(lead_id)


async def run(database: str, decisions: int, batch: int, history: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        pg_name = f"routing_bench_{os.getpid()}"
        url = (
            f"sqlite+aiosqlite:///{Path(tmp) / 'routing.sqlite3'}"
            if database == "sqlite"
            else await _postgres_database(pg_name)
        )
        settings = RoutingSettings(
            kafka_enabled=False,
            database_url=url,
            jwt_secret=DEV_JWT_SECRET,
            timer_interval_s=3600,
            log_level="WARNING",
        )
        app = create_app(settings)
        runtime: ServiceRuntime = app.state.runtime
        try:
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    for name in ("ana", "ben", "cleo", "dev"):
                        r = await client.post(
                            "/v1/reps",
                            headers=MANAGER,
                            json={
                                "id": name,
                                "name": name.title(),
                                "email": f"{name}@acme-demo.com",
                                "role": "sdr",
                                "territories": ["NA"],
                            },
                        )
                        assert r.status_code == 201, r.text
                    r = await client.put(
                        "/v1/routing/rules",
                        headers=MANAGER,
                        json={
                            "rules": [
                                {
                                    "id": "na",
                                    "role": "sdr",
                                    "conditions": [{"field": "country", "op": "eq", "value": "US"}],
                                    "pool": {"territory": "NA"},
                                },
                            ]
                        },
                    )
                    assert r.status_code == 200, r.text
                lead_ids = [new_id() for _ in range(decisions + 1)]
                earlier = [new_id() for _ in range(history)]
                for start in range(0, len(earlier), 100):  # today's decisions so far
                    chunk = earlier[start : start + 100]
                    await _deliver_batch(
                        runtime,
                        [
                            e
                            for x in chunk
                            for e in (
                                LeadCaptured(
                                    lead_id=x, email="x@y.io", country="US", captured_at=utcnow()
                                ),
                                _scored(x),
                            )
                        ],
                    )
                for start in range(0, len(lead_ids), 100):
                    await _deliver_batch(
                        runtime,
                        [
                            LeadCaptured(
                                lead_id=lead_id,
                                email="x@y.io",
                                country="US",
                                company="Acme",
                                captured_at=utcnow(),
                            )
                            for lead_id in lead_ids[start : start + 100]
                        ],
                    )

                statements: list[str] = []

                def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                    statements.append(statement)

                sync_engine = runtime.db.engine.sync_engine
                # One decision alone (a warm cache), statements listed.
                await _deliver_batch(runtime, [_scored(lead_ids[0])])
                event.listen(sync_engine, "before_cursor_execute", count)
                one = new_id()
                await _deliver_batch(
                    runtime,
                    [LeadCaptured(lead_id=one, email="x@y.io", country="US", captured_at=utcnow())],
                )
                statements.clear()
                await _deliver_batch(runtime, [_scored(one)])
                one_decision = list(statements)

                statements.clear()
                todo = lead_ids[1:]
                cpu, wall = time.process_time(), time.perf_counter()
                for start in range(0, len(todo), batch):
                    await _deliver_batch(runtime, [_scored(x) for x in todo[start : start + batch]])
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                event.remove(sync_engine, "before_cursor_execute", count)
                async with runtime.db.transaction() as session:
                    assigned = await session.scalar(
                        text("SELECT count(*) FROM leads WHERE status = 'assigned'")
                    )
                    per_rep = dict(
                        (
                            await session.execute(
                                text("SELECT sdr, count(*) FROM leads GROUP BY sdr")
                            )
                        ).all()
                    )
                assert assigned == history + decisions + 2, (assigned, per_rep)
        finally:
            if database == "postgres":
                await runtime.db.dispose()
                await _postgres_database(pg_name, drop=True)
    return {
        "database": database,
        "batch": batch,
        "decisions": decisions,
        "history": history,
        "statements_one_decision": len(one_decision),
        "one_decision": [" ".join(s.split())[:110] for s in one_decision],
        "statements_per_decision": round(len(statements) / decisions, 2),
        "cpu_ms_per_decision": round(cpu * 1000 / decisions, 3),
        "wall_ms_per_decision": round(wall * 1000 / decisions, 3),
        "per_rep": per_rep,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1, help="events per transaction")
    parser.add_argument(
        "--history", type=int, default=0, help="leads routed today before measuring"
    )
    parser.add_argument("--quiet", action="store_true", help="leave out the statement list")
    args = parser.parse_args()
    result = asyncio.run(run(args.database, args.decisions, args.batch, args.history))
    if args.quiet:
        result.pop("one_decision")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
