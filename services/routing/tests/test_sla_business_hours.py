"""Business-hours SLAs (the clock runs only in the owner's working hours, in their time
zone, across weekends and daylight-saving changes) and escalation to the owner's manager,
with a controllable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from leadflow_routing import handlers, sla
from leadflow_routing.sla import SlaTimer
from leadflow_routing.team.availability import business_deadline
from leadflow_shared.events import LeadCaptured
from leadflow_shared.ids import new_id
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, mql_scored, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")
NEW_YORK = {"tz": "America/New_York", "days": ["mon", "tue", "wed", "thu", "fri"]}
BERLIN = {"tz": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"]}
TOKYO = {"tz": "Asia/Tokyo", "days": ["mon", "tue", "wed", "thu", "fri"]}


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_business_clock_pauses_over_a_weekend_with_a_dst_change_in_two_time_zones() -> None:
    # New York: Friday 30 Oct 2026 16:30 EDT (UTC-4); clocks go back Sunday 1 Nov; the hour
    # left runs Friday 16:30-17:00 and Monday 09:00-09:30 EST (UTC-5).
    ny = {**NEW_YORK, "start": "09:00", "end": "17:00"}
    assert business_deadline(_utc(2026, 10, 30, 20, 30), 60, ny) == _utc(2026, 11, 2, 14, 30)
    # Berlin: Friday 23 Oct 2026 16:30 CEST (UTC+2); clocks go back Sunday 25 Oct; Monday
    # 09:30 CET is 08:30 UTC.
    de = {**BERLIN, "start": "09:00", "end": "17:00"}
    assert business_deadline(_utc(2026, 10, 23, 14, 30), 60, de) == _utc(2026, 10, 26, 8, 30)
    # Spring forward (Berlin, Sunday 29 Mar 2026): Friday 16:30 CET → Monday 09:30 CEST.
    assert business_deadline(_utc(2026, 3, 27, 15, 30), 60, de) == _utc(2026, 3, 30, 7, 30)
    # Tokyo has no DST: Friday 17:30 JST + 60 min with 09:00-18:00 → Monday 09:30 JST.
    jp = {**TOKYO, "start": "09:00", "end": "18:00"}
    assert business_deadline(_utc(2026, 10, 30, 8, 30), 60, jp) == _utc(2026, 11, 2, 0, 30)
    # Inside the day it is plain arithmetic; assigned before opening, the clock starts then.
    assert business_deadline(_utc(2026, 11, 2, 15, 0), 30, ny) == _utc(2026, 11, 2, 15, 30)
    assert business_deadline(_utc(2026, 11, 2, 12, 0), 30, ny) == _utc(2026, 11, 2, 14, 30)
    # Several days' worth: 8 h a day, 20 h from Monday 09:00 → Wednesday 13:00.
    assert business_deadline(_utc(2026, 11, 2, 14, 0), 20 * 60, ny) == _utc(2026, 11, 4, 18, 0)
    # No working hours: the clock always runs.
    assert business_deadline(_utc(2026, 10, 30, 20, 30), 60, None) == _utc(2026, 10, 30, 21, 30)


class Clock:
    def __init__(self) -> None:
        self.now = _utc(2026, 10, 30, 8, 30)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """routing's handlers and timer read this clock."""
    c = Clock()
    monkeypatch.setattr(handlers, "utcnow", c)
    monkeypatch.setattr(sla, "utcnow", c)
    return c


async def _rep(client: httpx.AsyncClient, rep_id: str, role: str, **fields: Any) -> None:
    body = {"id": rep_id, "name": rep_id.title(), "email": f"{rep_id}@acme-demo.com"}
    r = await client.post("/v1/reps", json={**body, "role": role, **fields}, headers=MANAGER)
    assert r.status_code == 201, r.text


async def _mql(runtime: ServiceRuntime, country: str, at: datetime) -> str:
    lead_id = new_id()
    await deliver(
        runtime, LeadCaptured(lead_id=lead_id, email="x@y.io", country=country, captured_at=at)
    )
    await deliver(
        runtime,
        mql_scored(lead_id, at=at),
    )
    return lead_id


async def test_sla_breach_waits_for_business_hours_then_escalates_to_the_manager(
    service: Service, clock: Clock
) -> None:
    client, runtime = service
    await _rep(client, "maya", "manager")
    await _rep(client, "kaito", "manager")
    await _rep(client, "ana", "sdr", manager="maya", working_hours={**NEW_YORK, "start": "09:00"})
    await _rep(client, "ben", "sdr", manager="maya")  # no hours: always on
    await _rep(
        client,
        "kenji",
        "sdr",
        manager="kaito",
        working_hours={**TOKYO, "start": "09:00", "end": "18:00"},
    )
    rules = [
        {
            "id": "us",
            "role": "sdr",
            "conditions": [{"field": "country", "op": "eq", "value": "US"}],
            "pool": {"reps": ["ana"]},
            "sla_minutes": 60,
            "sla_business_hours": True,
            "escalate_after_breaches": 1,
        },
        {
            "id": "jp",
            "role": "sdr",
            "conditions": [{"field": "country", "op": "eq", "value": "JP"}],
            "pool": {"reps": ["kenji"]},
            "sla_minutes": 60,
            "sla_business_hours": True,
            "escalate_after_breaches": 2,
        },
    ]
    r = await client.put("/v1/routing/rules", json={"rules": rules}, headers=MANAGER)
    assert r.status_code == 200, r.text
    assert r.json()["rules"][0]["sla_business_hours"] is True

    async def assignment(lead_id: str) -> dict[str, Any]:
        body: dict[str, Any] = (
            await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)
        ).json()
        return body

    # Friday 17:30 in Tokyo, then Friday 16:30 in New York (before the clocks go back).
    jp = await _mql(runtime, "JP", clock.now)
    clock.now = _utc(2026, 10, 30, 20, 30)
    us = await _mql(runtime, "US", clock.now)
    assert (await assignment(jp))["owners"]["sdr"] == "kenji"
    assert (await assignment(jp))["sla_due_at"] == "2026-11-02T00:30:00Z"
    assert (await assignment(us))["owners"]["sdr"] == "ana"
    assert (await assignment(us))["sla_due_at"] == "2026-11-02T14:30:00Z"

    timer = SlaTimer(runtime.db, 1)
    for now in (_utc(2026, 10, 30, 21, 31), _utc(2026, 10, 31, 12), _utc(2026, 11, 2, 0, 29)):
        clock.now = now
        assert await timer.tick() == 0  # the weekend does not count
    clock.now = _utc(2026, 11, 2, 0, 31)  # Monday 09:31 in Tokyo
    assert await timer.tick() == 1
    body = await assignment(jp)
    # Nobody else in kenji's pool: left with him for a manager; one breach, no escalation yet.
    assert [h["kind"] for h in body["history"]][-2:] == ["sla_breached", "escalated"]
    assert await outbox_events(runtime, "lead.escalated") == []

    clock.now = _utc(2026, 11, 2, 14, 29)  # 09:29 in New York (EST now)
    assert await timer.tick() == 0
    clock.now = _utc(2026, 11, 2, 14, 31)
    assert await timer.tick() == 1
    body = await assignment(us)
    kinds = [h["kind"] for h in body["history"]]
    assert kinds[-3:] == ["sla_breached", "escalated_to_manager", "escalated"]
    escalation = body["history"][-2]
    assert escalation["owner"] == "maya" and escalation["previous_owner"] == "ana"
    (event,) = await outbox_events(runtime, "lead.escalated")
    assert {k: v for k, v in event.items() if not k.startswith("_")} == {
        "lead_id": us,
        "role": "sdr",
        "owner": "ana",
        "manager": "maya",
        "breaches": 1,
        "reason": escalation["reason"],
    }


async def test_a_lead_nobody_takes_for_max_wait_goes_to_the_fallback_pool(
    service: Service, clock: Clock
) -> None:
    client, runtime = service
    clock.now = _utc(2026, 11, 2, 15)  # a Monday
    await _rep(client, "maya", "manager")
    await _rep(client, "ana", "sdr", manager="maya", out_of_office=True)
    await _rep(client, "eva", "sdr", territories=["EMEA"])
    rules = [
        {
            "id": "ana-only",
            "role": "sdr",
            "pool": {"reps": ["ana"]},
            "max_wait_minutes": 30,
            "fallback": {"territory": "EMEA"},
        }
    ]
    r = await client.put("/v1/routing/rules", json={"rules": rules}, headers=MANAGER)
    assert r.status_code == 200, r.text
    lead_id = await _mql(runtime, "US", clock.now)
    timer = SlaTimer(runtime.db, 1)
    clock.now += timedelta(minutes=29)
    assert await timer.tick() == 0
    r = await client.get("/v1/routing/waiting", headers=MANAGER)
    assert [w["lead_id"] for w in r.json()] == [lead_id]
    clock.now += timedelta(minutes=2)
    assert await timer.tick() == 1
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["owners"]["sdr"] == "eva" and body["status"] == "assigned"
    last = body["history"][-1]
    assert last["strategy"] == "fallback" and "max_wait_minutes (30)" in last["reason"]
    replay = (await client.get(f"/v1/assignments/{lead_id}/replay", headers=MANAGER)).json()
    assert replay["all_match"] and replay["replayed"] == 2
