from __future__ import annotations

import httpx

from leadflow_shared.events import LeadAssigned
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")


async def test_new_lead_is_accepted_and_announced(service: Service) -> None:
    client, runtime = service
    r = await client.post(
        "/v1/leads",
        json={
            "email": "Ann@Example.com",
            "company": "Acme",
            "country": "us",
            "employees": 500,
            "utm": {"source": "google"},
            "consent": {"marketing": True},
        },
        headers=WEB,
    )
    assert r.status_code == 202, r.text
    lead_id = r.json()["lead_id"]
    assert r.json()["status"] == "accepted"
    events = await outbox_events(runtime)
    assert [e["_type"] for e in events] == ["lead.captured"]
    assert events[0]["lead_id"] == lead_id
    assert events[0]["country"] == "US"
    assert events[0]["consent_marketing"] is True


async def test_same_email_merges_into_existing_lead(service: Service) -> None:
    client, runtime = service
    first = await client.post("/v1/leads", json={"email": "bo@x.io"}, headers=WEB)
    second = await client.post("/v1/leads", json={"email": " BO@x.io", "title": "CTO"}, headers=WEB)
    assert second.status_code == 200
    assert second.json() == {
        "lead_id": first.json()["lead_id"],
        "status": "merged",
        "warnings": [],
    }
    merged = await outbox_events(runtime, "lead.merged")
    assert merged[0]["title"] == "CTO" and merged[0]["changed_fields"] == ["title"]


async def test_idempotency_key_replays_the_first_answer(service: Service) -> None:
    client, runtime = service
    headers = {**WEB, "Idempotency-Key": "abc-1"}
    a = await client.post("/v1/leads", json={"email": "c@x.io"}, headers=headers)
    b = await client.post("/v1/leads", json={"email": "c@x.io"}, headers=headers)
    assert a.status_code == b.status_code == 202
    assert a.json() == b.json()
    assert len(await outbox_events(runtime)) == 1


async def test_invalid_lead_names_each_bad_field(service: Service) -> None:
    client, _ = service
    r = await client.post(
        "/v1/leads",
        json={
            "email": "nope",
            "country": "XX",
            "employees": 10**30,
            "first_name": "a\x00b",
            "surprise": 1,
        },
        headers=WEB,
    )
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["fields"]}
    assert {"email", "first_name", "surprise"} <= fields
    # Optional fields that cannot be normalised never refuse a lead (contract v2).
    assert not {"country", "employees"} & fields


async def test_unparseable_body_is_422_not_500(service: Service) -> None:
    client, _ = service
    r = await client.post(
        "/v1/leads", content=b"\xff\xfe{", headers={**WEB, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "body"


async def test_missing_or_bad_token_is_401_and_wrong_role_403(service: Service) -> None:
    client, _ = service
    assert (await client.post("/v1/leads", json={"email": "a@b.co"})).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (
        await client.post("/v1/leads", json={"email": "a@b.co"}, headers=bad)
    ).status_code == 401
    sdr = auth_header("sdr", "sdr-1")
    assert (
        await client.post("/v1/leads", json={"email": "a@b.co"}, headers=sdr)
    ).status_code == 403


async def test_sdr_reads_only_leads_assigned_to_them(service: Service) -> None:
    client, runtime = service
    lead_id = (await client.post("/v1/leads", json={"email": "d@x.io"}, headers=WEB)).json()[
        "lead_id"
    ]
    assert (
        await client.get(f"/v1/leads/{lead_id}", headers=auth_header("sdr", "sdr-1"))
    ).status_code == 403
    await deliver(
        runtime,
        LeadAssigned(
            lead_id=lead_id,
            role="sdr",
            owner="sdr-1",
            rule="r",
            strategy="round_robin",
            reason="test",
        ),
    )
    r = await client.get(f"/v1/leads/{lead_id}", headers=auth_header("sdr", "sdr-1"))
    assert r.status_code == 200
    assert r.json()["owners"]["sdr"] == "sdr-1"
    assert (await client.get("/v1/leads/nope", headers=WEB)).status_code == 404


async def test_redelivered_event_has_no_second_effect(service: Service) -> None:
    client, runtime = service
    lead_id = (await client.post("/v1/leads", json={"email": "e@x.io"}, headers=WEB)).json()[
        "lead_id"
    ]
    event = LeadAssigned(
        lead_id=lead_id, role="sdr", owner="sdr-1", rule="r", strategy="round_robin", reason="test"
    )
    assert await deliver(runtime, event, event_id="evt-1") is True
    assert await deliver(runtime, event, event_id="evt-1") is False


async def test_erasure_removes_personal_data_and_announces_it(service: Service) -> None:
    client, runtime = service
    lead_id = (
        await client.post("/v1/leads", json={"email": "f@x.io", "first_name": "Fay"}, headers=WEB)
    ).json()["lead_id"]
    await client.post(
        "/v1/engagements", json={"lead_id": lead_id, "type": "page_view"}, headers=WEB
    )
    admin = auth_header("admin", "root")
    assert (await client.delete(f"/v1/leads/{lead_id}", headers=WEB)).status_code == 403
    r = await client.delete(f"/v1/leads/{lead_id}", headers=admin)
    assert r.status_code == 202
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=admin)).json()
    assert lead["erased"] is True and lead["email"] is None and lead["first_name"] is None
    assert (await outbox_events(runtime, "lead.erased"))[0]["lead_id"] == lead_id
    assert (await client.delete(f"/v1/leads/{lead_id}", headers=admin)).status_code == 409
    # The same person may come back later as a new lead.
    again = await client.post("/v1/leads", json={"email": "f@x.io"}, headers=WEB)
    assert again.status_code == 202 and again.json()["lead_id"] != lead_id
