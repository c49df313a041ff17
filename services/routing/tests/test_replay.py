"""Decision replay: a 200-lead run through the handlers — batches, a rule change, directory
changes, SLA breaches with reassignment, leads that wait, AE and AM hand-offs — then every
recorded decision is made again from its recorded inputs and gives the same owner; a
tampered input shows the mismatch, named."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.models import Decision, RoutedLead
from leadflow_routing.sla import SlaTimer
from leadflow_shared.events import (
    CloudEvent,
    DealCreated,
    DealWon,
    EventData,
    LeadCaptured,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, mql_scored

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
COUNTRIES = ("US", "DE", "US", "FR", "JP", "US", "DE", "CA")


async def _rep(client: httpx.AsyncClient, rep_id: str, role: str, **fields: object) -> None:
    body = {"id": rep_id, "name": rep_id.title(), "email": f"{rep_id}@acme-demo.com"}
    r = await client.post("/v1/reps", json={**body, "role": role, **fields}, headers=MANAGER)
    assert r.status_code == 201, r.text


async def _rules(client: httpx.AsyncClient, *rules: dict[str, Any]) -> None:
    r = await client.put("/v1/routing/rules", json={"rules": list(rules)}, headers=MANAGER)
    assert r.status_code == 200, r.text


def _mql_events(lead_id: str, country: str, employees: int) -> list[EventData]:
    return [
        LeadCaptured(
            lead_id=lead_id,
            email="x@y.io",
            country=country,
            employees=employees,
            company="Acme",
            captured_at=utcnow(),
        ),
        mql_scored(lead_id),
    ]


async def _handle(session: AsyncSession, runtime: ServiceRuntime, events: list[EventData]) -> None:
    assert runtime.spec.handlers is not None
    for data in events:
        event = CloudEvent(
            id=new_id(),
            type=data.event_type,
            source="leadflow/test",
            subject=data.lead_id,
            data=data.model_dump(mode="json"),
        )
        await runtime.spec.handlers.handle_one(session, event, data)


async def _batches(runtime: ServiceRuntime, leads: list[str], start: int) -> None:
    """The leads' MQL events, ten leads per transaction (as the batch consumer runs)."""
    for first in range(0, len(leads), 10):
        async with runtime.db.transaction() as session:
            events: list[EventData] = []
            for i, lead_id in enumerate(leads[first : first + 10], start=start + first):
                events += _mql_events(lead_id, COUNTRIES[i % len(COUNTRIES)], 10 + 37 * i)
            await _handle(session, runtime, events)


async def _replay(client: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/assignments/{lead_id}/replay", headers=MANAGER)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@BOTH
async def test_every_decision_of_a_200_lead_run_replays_to_the_same_owner(
    any_service: Service,
) -> None:
    client, runtime = any_service
    for rep_id, territory, weight in (("ana", "NA", 3), ("ben", "NA", 1), ("cleo", "EU", 1)):
        await _rep(client, rep_id, "sdr", territories=[territory], weight=weight)
    await _rep(client, "dan", "sdr", territories=["EU"], capacity_per_day=15)
    await _rep(client, "nora", "ae")
    await _rep(client, "nick", "ae")
    await _rep(client, "alex", "am")
    na = {
        "id": "na",
        "role": "sdr",
        "conditions": [{"field": "country", "op": "in", "value": ["US", "CA"]}],
        "pool": {"territory": "NA"},
        "strategy": "weighted",
    }
    eu = {
        "id": "eu",
        "role": "sdr",
        "conditions": [{"field": "country", "op": "in", "value": ["DE", "FR"]}],
        "pool": {"territory": "EU"},
    }
    apac = {
        "id": "apac",
        "role": "sdr",
        "conditions": [{"field": "country", "op": "eq", "value": "JP"}],
        "pool": {"territory": "APAC"},
    }
    aes = {"id": "aes", "role": "ae", "strategy": "load_balanced"}
    await _rules(client, na, eu, apac, aes)

    leads = [new_id() for _ in range(200)]
    await _batches(runtime, leads[:100], 0)

    # A rule change (big EU companies to cleo alone; NA by plain round-robin) and directory
    # changes (ana plans a leave that is on now; ben's weight changes) mid-run.
    big_eu = {
        "id": "eu-big",
        "role": "sdr",
        "conditions": [
            {"field": "country", "op": "in", "value": ["DE", "FR"]},
            {"field": "employees", "op": "gte", "value": 2000},
        ],
        "pool": {"reps": ["cleo"]},
        "sla_minutes": 15,
    }
    await _rules(client, {**na, "strategy": "round_robin"}, big_eu, eu, apac, aes)
    await _batches(runtime, leads[100:150], 100)
    now = utcnow()
    leave = [
        {
            "from": (now - timedelta(minutes=1)).isoformat(),
            "to": (now + timedelta(days=1)).isoformat(),
        }
    ]
    r = await client.patch("/v1/reps/ana", json={"out_of_office_periods": leave}, headers=MANAGER)
    assert r.status_code == 200, r.text
    r = await client.patch("/v1/reps/ben", json={"weight": 2}, headers=MANAGER)
    assert r.status_code == 200, r.text
    await _batches(runtime, leads[150:], 150)

    # Japanese leads waited (nobody in APAC) until an APAC SDR arrived.
    await _rep(client, "kenji", "sdr", territories=["APAC"])
    # Twenty SDRs miss their SLA: reassigned (or escalated when nobody else can take it).
    async with runtime.db.transaction() as session:
        missed = list(
            await session.scalars(
                select(RoutedLead.id)
                .where(RoutedLead.status == "assigned")
                .order_by(RoutedLead.id)
                .limit(20)
            )
        )
        await session.execute(
            update(RoutedLead)
            .where(RoutedLead.id.in_(missed))
            .values(sla_due_at=utcnow() - timedelta(seconds=1))
        )
    assert await SlaTimer(runtime.db, 1).tick() >= 20
    # AE and AM hand-offs.
    bant = {"budget": "50k", "authority": "CTO", "need": "routing", "timeline": "Q1"}
    for lead_id in leads[:12]:
        r = await client.post(f"/v1/leads/{lead_id}/qualify", json=bant, headers=MANAGER)
        assert r.status_code in (200, 409), r.text
    async with runtime.db.transaction() as session:
        qualified = list(
            await session.scalars(
                select(RoutedLead).where(RoutedLead.ae.is_not(None)).order_by(RoutedLead.id)
            )
        )
        deal_events: list[EventData] = []
        for lead in qualified[:4]:
            deal_id = new_id()
            assert lead.ae is not None
            deal_events += [
                DealCreated(
                    lead_id=lead.id,
                    deal_id=deal_id,
                    owner=lead.ae,
                    stage="discovery",
                    probability=10,
                    currency="USD",
                    created_at=utcnow(),
                ),
                DealWon(
                    lead_id=lead.id,
                    deal_id=deal_id,
                    owner=lead.ae,
                    amount="1000",
                    currency="USD",
                    closed_at=utcnow(),
                ),
            ]
        await _handle(session, runtime, deal_events)

    async with runtime.db.transaction() as session:
        kinds = Counter(
            (d.kind, d.role)
            for d in await session.scalars(select(Decision).where(Decision.inputs.is_not(None)))
        )
    # The run really had all of it.
    assert kinds[("reassigned", "sdr")] >= 10 and kinds[("waiting", "sdr")] >= 20
    assert kinds[("assigned", "ae")] >= 8 and kinds[("assigned", "am")] == 4

    replayed = 0
    for lead_id in leads:
        body = await _replay(client, lead_id)
        assert body["all_match"] and body["mismatched"] == 0, body
        assert all(d["match"] for d in body["decisions"]), body
        replayed += body["replayed"]
    assert replayed == sum(kinds.values())

    # The history shows the rules version and the time each decision took.
    r = await client.get(f"/v1/assignments/{leads[0]}", headers=MANAGER)
    first = r.json()["history"][0]
    assert first["rules_version"] == 1 and first["duration_ms"] >= 0
    r = await client.get(f"/v1/assignments/{leads[-1]}", headers=MANAGER)
    assert r.json()["history"][0]["rules_version"] == 2

    # Tampered: a US lead recorded as German. The replay names the difference.
    async with runtime.db.transaction() as session:
        decision = await session.scalar(
            select(Decision)
            .where(Decision.kind == "assigned", Decision.rule == "na")
            .order_by(Decision.at)
            .limit(1)
        )
        assert decision is not None and decision.inputs is not None
        decision.inputs = {
            **decision.inputs,
            "lead": {**decision.inputs["lead"], "country": "DE"},
        }
        tampered_lead, tampered_id, owner = decision.lead_id, decision.id, decision.owner
    body = await _replay(client, tampered_lead)
    assert not body["all_match"] and body["mismatched"] == 1
    (bad,) = [d for d in body["decisions"] if not d["match"]]
    assert bad["decision_id"] == tampered_id and bad["recorded_owner"] == owner
    assert f"owner: recorded {owner}, replayed {bad['replayed_owner']}" in bad["mismatch"]
    assert "rule: recorded na, replayed eu" in bad["mismatch"]

    # Tampered strategy state: the counters say the chosen rep already had many more.
    async with runtime.db.transaction() as session:
        decision = next(
            d
            for d in await session.scalars(
                select(Decision)
                .where(Decision.kind == "assigned", Decision.rule == "eu")
                .order_by(Decision.at)
            )
            if len(d.candidates) > 1  # a choice between reps, made by the counters
        )
        assert decision.inputs is not None and decision.owner
        state = decision.inputs["state"]
        rotation = {**state["rotation"], "sdr:eu": {**state["rotation"].get("sdr:eu", {})}}
        rotation["sdr:eu"][decision.owner] = [10_000, None]
        decision.inputs = {**decision.inputs, "state": {**state, "rotation": rotation}}
        tampered_lead = decision.lead_id
    body = await _replay(client, tampered_lead)
    assert body["mismatched"] == 1 and "owner: recorded" in str(body)


async def test_replay_is_for_managers_and_the_reps_who_had_the_lead(service: Service) -> None:
    client, runtime = service
    await _rep(client, "ana", "sdr")
    lead_id = new_id()
    async with runtime.db.transaction() as session:
        await _handle(session, runtime, _mql_events(lead_id, "US", 10))
    r = await client.get(f"/v1/assignments/{lead_id}/replay", headers=auth_header("sdr", "ana"))
    assert r.status_code == 200 and r.json()["decisions"][0]["replayed_owner"] == "ana"
    r = await client.get(f"/v1/assignments/{lead_id}/replay", headers=auth_header("sdr", "bob"))
    assert r.status_code == 403
    r = await client.get(f"/v1/assignments/{new_id()}/replay", headers=MANAGER)
    assert r.status_code == 404
