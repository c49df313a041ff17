"""Handlers on a fetched batch, as the consumer runs them: one transaction, runs of one type
to the set-based handlers, per-lead order kept (via ``deliver_batch``)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event as sa_event
from sqlalchemy import select

from leadflow_scoring.repository import LeadRepository
from leadflow_shared.events import (
    AccountAssigned,
    CloudEvent,
    EngagementRecorded,
    EventData,
    LeadAssigned,
    LeadCaptured,
    LeadErased,
    LeadReassigned,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging.consumer import Delivered, apply_batch
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import deliver, deliver_batch, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
IDEAL: dict[str, Any] = {"employees": 250, "title": "VP Marketing", "country": "US"}


def captured(lead_id: str, **profile: Any) -> LeadCaptured:
    return LeadCaptured(lead_id=lead_id, email="a@example.com", captured_at=utcnow(), **profile)


def engagement(lead_id: str, type_: str) -> EngagementRecorded:
    return EngagementRecorded(
        lead_id=lead_id,
        engagement_id=new_id(),
        type=type_,
        occurred_at=utcnow() - timedelta(seconds=1),
    )


def assigned(lead_id: str, owner: str, role: str = "sdr") -> LeadAssigned:
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "role": role,
            "owner": owner,
            "rule": "r",
            "strategy": "round_robin",
            "reason": "x",
        }
    )


def reassigned(lead_id: str, owner: str, role: str = "sdr") -> LeadReassigned:
    return LeadReassigned.model_validate(
        {"lead_id": lead_id, "role": role, "previous_owner": None, "owner": owner, "reason": "x"}
    )


async def owners(runtime: ServiceRuntime, lead_id: str) -> dict[str, str]:
    async with runtime.db.transaction() as session:
        return await LeadRepository(session).owners(lead_id)


async def scored(runtime: ServiceRuntime, lead_id: str) -> list[dict[str, Any]]:
    return [e for e in await outbox_events(runtime, "lead.scored") if e["lead_id"] == lead_id]


async def test_owner_run_with_repeats_of_a_lead_keeps_its_last_owner(service: Service) -> None:
    _, runtime = service
    run = [assigned("L1", "sdr-1"), assigned("L2", "sdr-2"), assigned("L1", "sdr-3")]
    assert await deliver_batch(runtime, list(run)) == [True, True, True]
    assert await owners(runtime, "L1") == {"sdr": "sdr-3"}
    assert await owners(runtime, "L2") == {"sdr": "sdr-2"}


async def test_owner_events_of_several_types_apply_in_event_order(service: Service) -> None:
    _, runtime = service
    batch: list[EventData] = [
        assigned("L1", "sdr-1"),
        reassigned("L1", "sdr-2"),
        assigned("L1", "ae-1", role="ae"),
        AccountAssigned(
            lead_id="L1", owner="am-1", deal_id="D1", rule="r", strategy="s", reason="x"
        ),
        reassigned("L1", "sdr-3"),
        assigned("L1", "sdr-4"),
    ]
    await deliver_batch(runtime, batch)
    assert await owners(runtime, "L1") == {"sdr": "sdr-4", "ae": "ae-1", "am": "am-1"}
    await deliver_batch(runtime, [reassigned("L1", "sdr-5"), assigned("L1", "sdr-6")])
    assert (await owners(runtime, "L1"))["sdr"] == "sdr-6"


async def test_owner_run_leaves_erased_leads_out(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, LeadErased(lead_id="gone", erased_at=utcnow()))
    await deliver_batch(runtime, [assigned("gone", "sdr-1"), assigned("L1", "sdr-1")])
    assert await owners(runtime, "gone") == {}
    assert await owners(runtime, "L1") == {"sdr": "sdr-1"}


async def test_redelivered_batch_has_no_second_effect(service: Service) -> None:
    _, runtime = service
    batch: list[EventData] = [
        captured("L1", **IDEAL),
        engagement("L1", "demo_request"),
        assigned("L1", "sdr-1"),
        captured("L2"),
    ]
    ids: list[str | None] = [new_id() for _ in batch]
    assert await deliver_batch(runtime, batch, event_ids=ids) == [True] * 4
    before = await outbox_events(runtime)
    assert await deliver_batch(runtime, batch, event_ids=ids) == [False] * 4
    assert await outbox_events(runtime) == before
    assert [e["score"] for e in await scored(runtime, "L1")] == [50, 90]
    assert await owners(runtime, "L1") == {"sdr": "sdr-1"}


async def test_a_lead_rescored_twice_in_one_batch_becomes_an_mql_once(service: Service) -> None:
    _, runtime = service
    batch: list[EventData] = [
        captured("L1", employees=300, country="US"),  # 30
        engagement("L1", "demo_request"),  # 70: MQL
        engagement("L1", "webinar_attended"),  # 80
        captured("L1", employees=10),  # 50 (engagement only): still an MQL
    ]
    await deliver_batch(runtime, batch)
    events = await scored(runtime, "L1")
    assert [e["score"] for e in events] == [30, 70, 80, 50]
    assert [e["mql"] for e in events] == [False, True, True, True]
    assert [e["became_mql"] for e in events] == [False, True, False, False]


async def test_erasure_inside_a_batch_stops_the_events_after_it(service: Service) -> None:
    _, runtime = service
    batch: list[EventData] = [
        captured("L1", **IDEAL),
        LeadErased(lead_id="L1", erased_at=utcnow()),
        captured("L1", **IDEAL),
        engagement("L1", "demo_request"),
        assigned("L1", "sdr-1"),
    ]
    await deliver_batch(runtime, batch)
    assert len(await scored(runtime, "L1")) == 1
    assert await owners(runtime, "L1") == {}


async def statements_per_run(
    runtime: ServiceRuntime, make: Callable[[str], EventData], sizes: Sequence[int]
) -> list[int]:
    """Statements the handlers of one batch send, for runs of ``sizes`` events."""
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.startswith("DELETE"):  # housekeeping runs beside the handlers
            statements.append(statement)

    engine = runtime.db.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", count)
    per_run = []
    try:
        for size in sizes:
            statements.clear()
            await deliver_batch(runtime, [make(f"L{n}") for n in range(size)])
            per_run.append(len(statements))
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    return per_run


async def test_runs_of_profile_or_engagement_events_cost_a_few_statements_at_any_length(
    service: Service,
) -> None:
    _, runtime = service
    await deliver(runtime, captured("warm-up"))  # the rules in force are parsed and cached
    locks = 1 if runtime.db.engine.dialect.name == "postgresql" else 0
    # dedup, lock, facts (engagements, MQL since, erased), profiles, rules version, scores,
    # outbox
    captures = await statements_per_run(runtime, lambda lead: captured(lead, **IDEAL), [3, 40])
    assert captures == [6 + locks] * 2
    # dedup, lock, facts, engagements stored, profiles, rules version, scores, outbox
    clicks = await statements_per_run(runtime, lambda lead: engagement(lead, "email_open"), [3, 40])
    assert clicks == [7 + locks] * 2


async def test_engagement_run_counts_each_engagement_once_and_waits_for_profiles(
    service: Service,
) -> None:
    _, runtime = service
    await deliver(runtime, captured("L1", employees=300, country="US"))  # fit 30
    click = engagement("L1", "pricing_page_view")  # 15
    batch: list[EventData] = [
        click,
        engagement("L2", "demo_request"),  # no profile yet: kept, not scored
        click,  # the same engagement under another event id
        engagement("L1", "demo_request"),  # 40
    ]
    assert await deliver_batch(runtime, batch) == [True] * 4
    assert [e["score"] for e in await scored(runtime, "L1")] == [30, 45, 85]
    assert await scored(runtime, "L2") == []
    await deliver(runtime, captured("L2", country="US"))
    assert [e["score"] for e in await scored(runtime, "L2")] == [50]


async def test_each_scored_event_of_a_batch_continues_its_own_events_trace(
    service: Service,
) -> None:
    _, runtime = service
    traces = {lead: secrets.token_hex(16) for lead in ("L1", "L2", "L3")}
    batch: list[EventData] = [captured("L1"), captured("L2"), captured("L3")]
    batch += [engagement("L1", "demo_request"), engagement("L2", "demo_request")]
    items = [
        Delivered(
            CloudEvent(
                type=data.event_type,
                source="leadflow/test",
                subject=data.lead_id,
                data=data.model_dump(mode="json"),
                traceparent=f"00-{traces[data.lead_id]}-{secrets.token_hex(8)}-01",
            ),
            data,
        )
        for data in batch
    ]
    tables = runtime.spec.tables
    assert runtime.spec.handlers is not None
    await apply_batch(runtime.db, tables.processed_events, "scoring", runtime.spec.handlers, items)
    async with runtime.db.transaction() as session:
        rows = (
            await session.execute(select(tables.outbox.c.key, tables.outbox.c.traceparent))
        ).all()
    assert len(rows) == 5
    assert all(traceparent.split("-")[1] == traces[lead] for lead, traceparent in rows)
