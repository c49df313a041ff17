"""Concurrent captures share transactions (group commit) and still behave one by one."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import func, select

from leadflow_intake.models import Lead
from leadflow_shared.events import LeadAssigned, LeadReassigned
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver_batch, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")


async def test_concurrent_posts_of_one_email_make_one_lead(service: Service) -> None:
    client, runtime = service
    emails = [f"p{i % 10}@x.io" for i in range(60)]
    answers = await asyncio.gather(
        *(
            client.post("/v1/leads", json={"email": e, "title": f"T{i}"}, headers=WEB)
            for i, e in enumerate(emails)
        )
    )
    by_email: dict[str, set[str]] = {}
    statuses: Counter[tuple[str, str, int]] = Counter()
    for email, r in zip(emails, answers, strict=True):
        assert r.status_code in (200, 202), r.text
        by_email.setdefault(email, set()).add(r.json()["lead_id"])
        statuses[(email, r.json()["status"], r.status_code)] += 1
    assert all(len(ids) == 1 for ids in by_email.values())
    for email in by_email:
        assert statuses[(email, "accepted", 202)] == 1
        assert statuses[(email, "merged", 200)] == 5
    async with runtime.db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Lead)) == 10
    events = await outbox_events(runtime)
    assert Counter(e["_type"] for e in events) == {"lead.captured": 10, "lead.merged": 50}


async def test_an_idempotency_key_repeated_concurrently_gets_one_answer(
    service: Service,
) -> None:
    client, runtime = service
    headers = {**WEB, "Idempotency-Key": "same-key"}
    answers = await asyncio.gather(
        *(client.post("/v1/leads", json={"email": "k@x.io"}, headers=headers) for _ in range(8))
    )
    assert {r.json()["lead_id"] for r in answers} == {answers[0].json()["lead_id"]}
    later = await client.post("/v1/leads", json={"email": "k@x.io"}, headers=headers)
    assert later.json()["lead_id"] == answers[0].json()["lead_id"]
    assert len(await outbox_events(runtime, "lead.captured")) == 1


async def test_owner_events_of_one_batch_apply_in_order_once(service: Service) -> None:
    client, runtime = service
    lead_id = (await client.post("/v1/leads", json={"email": "o@x.io"}, headers=WEB)).json()[
        "lead_id"
    ]
    common = {"lead_id": lead_id, "role": "sdr"}
    batch = [
        LeadAssigned(**common, owner="sdr-1", rule="r", strategy="round_robin", reason="t"),
        LeadReassigned(**common, previous_owner="sdr-1", owner="sdr-2", reason="sla"),
        LeadAssigned(**common, owner="sdr-3", rule="r", strategy="round_robin", reason="t"),
        LeadAssigned(**common, owner="sdr-4", rule="r", strategy="round_robin", reason="t"),
    ]
    ids: list[str | None] = ["e1", "e2", "e3", "e4"]
    assert await deliver_batch(runtime, list(batch), event_ids=ids) == [True] * 4
    manager = auth_header("manager", "m")
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=manager)).json()
    assert lead["owners"]["sdr"] == "sdr-4"
    # A redelivered batch has no second effect, even if older events come back.
    assert await deliver_batch(runtime, list(batch[:2]), event_ids=ids[:2]) == [False, False]
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=manager)).json()
    assert lead["owners"]["sdr"] == "sdr-4"


async def test_each_grouped_lead_carries_the_trace_of_its_own_request(service: Service) -> None:
    client, runtime = service
    traces = {f"t{i}@x.io": f"{i:032x}" for i in range(1, 13)}
    answers = await asyncio.gather(
        *(
            client.post(
                "/v1/leads",
                json={"email": email},
                headers={**WEB, "traceparent": f"00-{trace}-{'1' * 16}-01"},
            )
            for email, trace in traces.items()
        )
    )
    assert all(r.status_code == 202 for r in answers)
    table = runtime.spec.tables.outbox
    async with runtime.db.sessions() as session:
        rows = (await session.execute(select(table.c.payload, table.c.traceparent))).all()
    assert {row.payload["email"]: row.traceparent.split("-")[1] for row in rows} == traces
