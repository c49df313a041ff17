"""routing's HTTP API and event handlers on a real (SQLite) database."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import update

from leadflow_routing.models import RoutedLead
from leadflow_routing.sla import SlaTimer
from leadflow_shared.events import DealCreated, DealWon, LeadCaptured, LeadErased, LeadScored
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, mql_scored, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")


async def _team(client: httpx.AsyncClient) -> None:
    for rep in [
        {
            "id": "ana",
            "name": "Ana",
            "email": "ana@acme-demo.com",
            "role": "sdr",
            "territories": ["NA"],
        },
        {
            "id": "ben",
            "name": "Ben",
            "email": "ben@acme-demo.com",
            "role": "sdr",
            "territories": ["NA"],
        },
        {
            "id": "nora",
            "name": "Nora",
            "email": "nora@acme-demo.com",
            "role": "ae",
            "territories": ["NA"],
        },
        {"id": "alex", "name": "Alex", "email": "alex@acme-demo.com", "role": "am"},
    ]:
        r = await client.post("/v1/reps", json=rep, headers=MANAGER)
        assert r.status_code == 201, r.text


async def _mql(runtime: ServiceRuntime, country: str = "US") -> str:
    lead_id = new_id()
    await deliver(
        runtime,
        LeadCaptured(
            lead_id=lead_id, email="x@y.io", country=country, company="Acme", captured_at=utcnow()
        ),
    )
    await deliver(
        runtime,
        mql_scored(lead_id),
    )
    return lead_id


async def test_mql_is_assigned_round_robin_with_reason_and_sla(service: Service) -> None:
    client, runtime = service
    await _team(client)
    first, second = await _mql(runtime), await _mql(runtime)
    owners = []
    for lead_id in (first, second):
        r = await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)
        assert r.status_code == 200
        body = r.json()
        owners.append(body["owners"]["sdr"])
        entry = body["history"][0]
        assert entry["kind"] == "assigned" and entry["rule"] == "all-sdrs"
        assert entry["strategy"] == "round_robin" and entry["candidates"] == ["ana", "ben"]
        assert body["sla_due_at"] is not None
    assert sorted(owners) == ["ana", "ben"]
    events = await outbox_events(runtime, "lead.assigned")
    assert [e["role"] for e in events] == ["sdr", "sdr"]
    assert events[0]["sla_due_at"] and events[0]["reason"]


async def test_a_second_mql_signal_never_assigns_twice(service: Service) -> None:
    client, runtime = service
    await _team(client)
    lead_id = await _mql(runtime)
    await deliver(
        runtime,
        LeadScored(
            lead_id=lead_id,
            score=90,
            fit=60,
            engagement=30,
            grade="A",
            mql=True,
            rules_version=1,
            scored_at=utcnow(),
        ),
    )
    assert len(await outbox_events(runtime, "lead.assigned")) == 1


async def test_redelivered_mql_event_has_no_second_effect(service: Service) -> None:
    client, runtime = service
    await _team(client)
    lead_id = new_id()
    await deliver(runtime, LeadCaptured(lead_id=lead_id, email="x@y.io", captured_at=utcnow()))
    scored = LeadScored(
        lead_id=lead_id,
        score=70,
        fit=60,
        engagement=10,
        grade="B",
        mql=True,
        rules_version=1,
        scored_at=utcnow(),
    )
    assert await deliver(runtime, scored, event_id="e-1") is True
    assert await deliver(runtime, scored, event_id="e-1") is False
    assert len(await outbox_events(runtime, "lead.assigned")) == 1


async def test_mql_before_profile_waits_for_the_profile(service: Service) -> None:
    client, runtime = service
    await _team(client)
    lead_id = new_id()
    await deliver(
        runtime,
        LeadScored(
            lead_id=lead_id,
            score=70,
            fit=60,
            engagement=10,
            grade="B",
            mql=True,
            rules_version=1,
            scored_at=utcnow(),
        ),
    )
    assert await outbox_events(runtime, "lead.assigned") == []
    await deliver(runtime, LeadCaptured(lead_id=lead_id, email="x@y.io", captured_at=utcnow()))
    assert len(await outbox_events(runtime, "lead.assigned")) == 1


async def test_journey_accept_qualify_to_ae_then_won_to_am(service: Service) -> None:
    client, runtime = service
    await _team(client)
    lead_id = await _mql(runtime)
    sdr = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()["owners"]["sdr"]
    other = "ben" if sdr == "ana" else "ana"
    me = auth_header("sdr", sdr)
    assert (
        await client.post(f"/v1/leads/{lead_id}/accept", headers=auth_header("sdr", other))
    ).status_code == 403
    r = await client.post(f"/v1/leads/{lead_id}/accept", headers=me)
    assert r.status_code == 200 and r.json()["status"] == "accepted"
    assert r.json()["sla_due_at"] is None
    assert (await client.post(f"/v1/leads/{lead_id}/accept", headers=me)).status_code == 409
    queue = (await client.get("/v1/queue", headers=me)).json()
    assert [q["lead_id"] for q in queue] == [lead_id]
    r = await client.post(f"/v1/leads/{lead_id}/qualify", json={"framework": "bant"}, headers=me)
    assert r.status_code == 422
    assert "bant needs budget" in r.text
    r = await client.post(
        f"/v1/leads/{lead_id}/qualify",
        json={"budget": "50k", "authority": "CTO", "need": "routing", "timeline": "Q1"},
        headers=me,
    )
    assert r.status_code == 200, r.text
    assert r.json()["owners"]["ae"] == "nora" and r.json()["status"] == "qualified"
    ae_event = (await outbox_events(runtime, "lead.assigned"))[-1]
    assert ae_event["role"] == "ae" and ae_event["company"] == "Acme"
    assert (await outbox_events(runtime, "lead.qualified"))[0]["fields"]["budget"] == "50k"
    deal_id = new_id()
    await deliver(
        runtime,
        DealCreated(
            lead_id=lead_id,
            deal_id=deal_id,
            owner="nora",
            stage="discovery",
            probability=10,
            currency="USD",
            created_at=utcnow(),
        ),
    )
    await deliver(
        runtime,
        DealWon(
            lead_id=lead_id,
            deal_id=deal_id,
            owner="nora",
            amount="1000",
            currency="USD",
            closed_at=utcnow(),
        ),
    )
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["owners"] == {"sdr": sdr, "ae": "nora", "am": "alex"}
    assert body["status"] == "won"
    (account,) = await outbox_events(runtime, "account.assigned")
    assert account["deal_id"] == deal_id and account["owner"] == "alex"
    kinds = [h["kind"] for h in body["history"]]
    assert kinds == [
        "assigned",
        "accepted",
        "qualified",
        "assigned",
        "deal_created",
        "deal_won",
        "assigned",
    ]
    assert (
        await client.get(f"/v1/assignments/{lead_id}", headers=auth_header("am", "alex"))
    ).status_code == 200
    assert (
        await client.get(f"/v1/assignments/{lead_id}", headers=auth_header("sdr", other))
    ).status_code == 403


async def test_disqualify_and_recycle_need_a_reason(service: Service) -> None:
    client, runtime = service
    await _team(client)
    a, b = await _mql(runtime), await _mql(runtime)
    r = await client.post(f"/v1/leads/{a}/disqualify", json={}, headers=MANAGER)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "reason"
    r = await client.post(f"/v1/leads/{a}/disqualify", json={"reason": "student"}, headers=MANAGER)
    assert r.json()["status"] == "disqualified"
    r = await client.post(f"/v1/leads/{b}/recycle", json={"reason": "next year"}, headers=MANAGER)
    assert r.json()["status"] == "nurture"
    assert (await client.post(f"/v1/leads/{b}/accept", headers=MANAGER)).status_code == 409
    assert (await client.post("/v1/leads/nope/accept", headers=MANAGER)).status_code == 404


async def test_sla_breach_reassigns_to_another_sdr(service: Service) -> None:
    client, runtime = service
    await _team(client)
    lead_id = await _mql(runtime)
    first = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()["owners"][
        "sdr"
    ]
    async with runtime.db.transaction() as session:
        await session.execute(
            update(RoutedLead)
            .where(RoutedLead.id == lead_id)
            .values(sla_due_at=utcnow() - timedelta(seconds=1))
        )
    assert await SlaTimer(runtime.db, 1).tick() == 1
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["owners"]["sdr"] not in (None, first)
    assert [h["kind"] for h in body["history"]][-2:] == ["sla_breached", "reassigned"]
    (breach,) = await outbox_events(runtime, "lead.sla_breached")
    (moved,) = await outbox_events(runtime, "lead.reassigned")
    assert breach["owner"] == first and moved["previous_owner"] == first
    # Nothing is due any more: a second tick does nothing.
    assert await SlaTimer(runtime.db, 1).tick() == 0


async def test_lead_waits_when_nobody_is_available_and_is_routed_later(service: Service) -> None:
    client, runtime = service
    await _team(client)
    for rep in ("ana", "ben"):
        await client.patch(f"/v1/reps/{rep}", json={"out_of_office": True}, headers=MANAGER)
    lead_id = await _mql(runtime)
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["status"] == "waiting_for_rep"
    assert body["history"][0]["skipped"] == {"ana": "out of office", "ben": "out of office"}
    r = await client.patch(
        "/v1/reps/ben", json={"out_of_office": False}, headers=auth_header("sdr", "ben")
    )
    assert r.status_code == 200
    # Ben's return gives the waiting lead its chance in the same transaction.
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["owners"]["sdr"] == "ben" and body["status"] == "assigned"
    assert await SlaTimer(runtime.db, 1).tick() == 0


async def test_reps_api_validates_and_guards(service: Service) -> None:
    client, _ = service
    bad = {
        "id": "x y",
        "name": "",
        "email": "nope",
        "role": "boss",
        "weight": 0,
        "working_hours": {"tz": "Mars/Base", "start": "25:00"},
    }
    r = await client.post("/v1/reps", json=bad, headers=MANAGER)
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["fields"]}
    assert {
        "id",
        "name",
        "email",
        "role",
        "weight",
        "working_hours.tz",
        "working_hours.start",
    } <= fields
    await _team(client)
    dup = {"id": "ana", "name": "Ana", "email": "ana@acme-demo.com", "role": "sdr"}
    assert (await client.post("/v1/reps", json=dup, headers=MANAGER)).status_code == 409
    assert (
        await client.post("/v1/reps", json=dup, headers=auth_header("sdr", "ana"))
    ).status_code == 403
    r = await client.patch(
        "/v1/reps/ana", json={"out_of_office": None, "name": None}, headers=MANAGER
    )
    assert r.status_code == 422
    assert {f["field"] for f in r.json()["fields"]} == {"out_of_office", "name"}
    r = await client.patch(
        "/v1/reps/ana", json={"team": None, "capacity_per_day": None}, headers=MANAGER
    )
    assert r.status_code == 200 and r.json()["capacity_per_day"] is None
    r = await client.patch("/v1/reps/ana", json={"weight": 5}, headers=auth_header("sdr", "ana"))
    assert r.status_code == 403
    r = await client.patch(
        "/v1/reps/ana", json={"out_of_office": True}, headers=auth_header("sdr", "ben")
    )
    assert r.status_code == 403
    assert (await client.get("/v1/reps", headers=auth_header("sdr", "ana"))).status_code == 200
    assert (await client.get("/v1/reps")).status_code == 401
    assert (await client.get("/v1/reps/zed", headers=MANAGER)).status_code == 404


async def test_rules_are_versioned_validated_and_applied(service: Service) -> None:
    client, runtime = service
    await _team(client)
    r = await client.get("/v1/routing/rules", headers=MANAGER)
    assert r.json()["version"] == 0
    rules = {
        "rules": [
            {
                "id": "ben-gets-ca",
                "role": "sdr",
                "pool": {"reps": ["ben"]},
                "conditions": [{"field": "country", "op": "eq", "value": "CA"}],
                "sla_minutes": 5,
            },
        ]
    }
    r = await client.put("/v1/routing/rules", json=rules, headers=MANAGER)
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["created_by"] == "maya"
    lead_id = await _mql(runtime, country="CA")
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["owners"]["sdr"] == "ben" and body["history"][0]["rule"] == "ben-gets-ca"
    bad = {
        "rules": [
            {"id": "x", "role": "sdr", "pool": {"reps": ["nora"]}},
            {"id": "y", "role": "sdr", "conditions": [{"field": "shoe", "op": "eq", "value": 1}]},
        ]
    }
    r = await client.put("/v1/routing/rules", json=bad, headers=MANAGER)
    assert r.status_code == 422 and "rules.1.conditions.0.field" in {
        f["field"] for f in r.json()["fields"]
    }
    bad = {"rules": [{"id": "x", "role": "sdr", "pool": {"reps": ["nora"]}}]}
    r = await client.put("/v1/routing/rules", json=bad, headers=MANAGER)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "rules.0.pool.reps"
    assert (
        await client.put("/v1/routing/rules", json=rules, headers=auth_header("sdr", "ana"))
    ).status_code == 403


async def test_simulation_replays_past_mqls(service: Service) -> None:
    client, runtime = service
    await _team(client)
    for _ in range(4):
        await _mql(runtime)
    draft = {"rules": {"rules": [{"id": "ana-only", "role": "sdr", "pool": {"reps": ["ana"]}}]}}
    r = await client.post("/v1/routing/simulate", json=draft, headers=MANAGER)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leads"] == 4 and body["changed"] == 2
    assert body["by_owner"]["ana"] == {"actual": 2, "simulated": 4}


async def test_erasure_forgets_profile_and_notes(service: Service) -> None:
    client, runtime = service
    await _team(client)
    lead_id = await _mql(runtime)
    await deliver(runtime, LeadErased(lead_id=lead_id, erased_at=utcnow()))
    async with runtime.db.transaction() as session:
        lead = await session.get(RoutedLead, lead_id)
        assert lead is not None
        assert lead.profile == {} and lead.company is None and lead.erased
    draft = {"rules": {"rules": [{"id": "all", "role": "sdr"}]}}
    r = await client.post("/v1/routing/simulate", json=draft, headers=MANAGER)
    assert lead_id not in {a["lead_id"] for a in r.json()["assignments"]}
