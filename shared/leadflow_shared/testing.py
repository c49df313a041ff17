"""Test helpers for services: an in-process app on SQLite without Kafka, tokens, handlers.

Unit tests exercise one service's HTTP API and handlers (outbox rows are inspected instead
of Kafka); cross-service tests in ``tests/`` use the real broker and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from leadflow_shared.auth import mint_token
from leadflow_shared.events import CloudEvent, EventData, LeadScored
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging.consumer import Delivered, apply_batch
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.settings import DEV_JWT_SECRET


def auth_header(role: str, sub: str = "tester") -> dict[str, str]:
    """``Authorization`` header for a token signed with the development secret."""
    return {"Authorization": f"Bearer {mint_token(DEV_JWT_SECRET, sub=sub, role=role)}"}


@asynccontextmanager
async def running_service(
    create_app: Callable[..., FastAPI], settings_cls: Any, tmp_path: Path, **overrides: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceRuntime]]:
    """Start a service's app (lifespan included) on a fresh SQLite file, Kafka disabled."""
    settings = settings_cls(
        kafka_enabled=False,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}",
        jwt_secret=DEV_JWT_SECRET,
        **overrides,
    )
    app = create_app(settings)
    runtime: ServiceRuntime = app.state.runtime
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, runtime


async def deliver(runtime: ServiceRuntime, data: EventData, *, event_id: str | None = None) -> bool:
    """Hand one event to the service's handlers as the consumer would (idempotently).

    Returns False when the event id was already processed (no second effect).
    """
    (handled,) = await deliver_batch(runtime, [data], event_ids=[event_id])
    return handled


async def deliver_batch(
    runtime: ServiceRuntime,
    items: list[EventData],
    *,
    event_ids: list[str | None] | None = None,
) -> list[bool]:
    """Hand several events to the service's handlers in one transaction, as the consumer
    does with a fetched batch; per event, False when it was a duplicate."""
    registry = runtime.spec.handlers
    assert registry is not None
    ids = event_ids or [None] * len(items)
    delivered = [
        Delivered(
            CloudEvent(
                id=event_id or new_id(),
                type=data.event_type,
                source="leadflow/test",
                subject=data.lead_id,
                data=data.model_dump(mode="json"),
            ),
            data,
        )
        for data, event_id in zip(items, ids, strict=True)
    ]
    wanted = [registry.handles(d.event.type) for d in delivered]
    outcomes = iter(
        await apply_batch(
            runtime.db,
            runtime.spec.tables.processed_events,
            runtime.spec.name,
            registry,
            [d for d, w in zip(delivered, wanted, strict=True) if w],
        )
    )
    return [next(outcomes) if w else False for w in wanted]


async def outbox_events(
    runtime: ServiceRuntime, event_type: str | None = None
) -> list[dict[str, Any]]:
    """Events staged in the outbox (data dicts), oldest first, optionally of one type."""
    table = runtime.spec.tables.outbox
    query = select(table.c.event_type, table.c.payload).order_by(table.c.seq)
    if event_type is not None:
        query = query.where(table.c.event_type == event_type)
    async with runtime.db.transaction() as session:
        rows = (await session.execute(query)).all()
    return [dict(row.payload, _type=row.event_type) for row in rows]


def mql_scored(lead_id: str, *, at: datetime | None = None, **changes: Any) -> LeadScored:
    """A ``lead.scored`` that makes the lead an MQL (score 70, fit 60, grade B, first
    crossing), as scoring would send it at ``at`` (default now); ``changes`` override."""
    values: dict[str, Any] = {
        "lead_id": lead_id,
        "score": 70,
        "fit": 60,
        "engagement": 10,
        "grade": "B",
        "mql": True,
        "became_mql": True,
        "rules_version": 1,
        "scored_at": at or utcnow(),
    }
    return LeadScored(**{**values, **changes})
