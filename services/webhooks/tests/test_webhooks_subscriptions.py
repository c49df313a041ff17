"""Registering, listing and deactivating subscriptions: validation, auth and ownership."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from leadflow_shared.events import LeadCaptured, LeadScored
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, deliver_batch, outbox_events
from leadflow_webhooks.models import Delivery
from leadflow_webhooks.subscribed_types import subscribed_types
from leadflow_webhooks.testing import deliveries_of, register

Service = tuple[httpx.AsyncClient, ServiceRuntime]
CRM = auth_header("integration", "crm")
SLACK = auth_header("integration", "slackbot")
ADMIN = auth_header("admin", "ops")
URL = "https://hooks.example.com/leadflow"


def _fields(response: httpx.Response) -> set[str]:
    return {f["field"] for f in response.json()["fields"]}


async def test_registering_returns_the_secret_once(service: Service) -> None:
    client, runtime = service
    r = await client.post(
        "/v1/webhooks",
        json={"url": URL, "event_types": ["lead.*", "deal.won"], "description": "CRM sync"},
        headers=CRM,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] == ["lead.*", "deal.won"]
    assert {"id", "url", "description", "created_at"} <= created.keys()
    listed = (await client.get("/v1/webhooks", headers=CRM)).json()
    assert [s["id"] for s in listed] == [created["id"]]
    one = (await client.get(f"/v1/webhooks/{created['id']}", headers=CRM)).json()
    assert "secret" not in listed[0] and "secret" not in one
    assert one["url"] == URL and one["active"] is True
    # This service only delivers; it announces nothing on Kafka.
    assert await outbox_events(runtime) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com", "event_types": ["*"]}, "url"),
        ({"url": "https://u:p@example.com/", "event_types": ["*"]}, "url"),
        ({"url": "https:///nohost", "event_types": ["*"]}, "url"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "event_types": ["lead.teleported"]}, "event_types"),
        ({"url": URL, "event_types": ["bogus.*"]}, "event_types"),
        ({"url": URL}, "event_types"),
        ({"event_types": ["*"]}, "url"),
        ({"url": URL, "event_types": ["*"], "description": "a\x00b"}, "description"),
        ({"url": URL, "event_types": ["*"], "extra": 1}, "extra"),
    ],
)
async def test_invalid_registration_is_422_naming_the_field(
    service: Service, body: dict[str, Any], field: str
) -> None:
    client, _ = service
    r = await client.post("/v1/webhooks", json=body, headers=CRM)
    assert r.status_code == 422, r.text
    assert field in _fields(r)


async def test_missing_or_bad_token_is_401(service: Service) -> None:
    client, _ = service
    assert (await client.get("/v1/webhooks")).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (await client.post("/v1/webhooks", json={}, headers=bad)).status_code == 401


@pytest.mark.parametrize("role", ["manager", "sdr", "ae", "am"])
async def test_roles_other_than_admin_and_integration_are_403(service: Service, role: str) -> None:
    client, _ = service
    headers = auth_header(role, "someone")
    r = await client.post("/v1/webhooks", json={"url": URL, "event_types": ["*"]}, headers=headers)
    assert r.status_code == 403
    assert (await client.get("/v1/webhooks", headers=headers)).status_code == 403


async def test_integration_clients_see_and_manage_only_their_own(service: Service) -> None:
    client, _ = service
    mine = await register(client, URL, sub="crm")
    theirs = await register(client, URL, sub="slackbot")
    assert [s["id"] for s in (await client.get("/v1/webhooks", headers=CRM)).json()] == [mine["id"]]
    for method, path in [
        ("GET", f"/v1/webhooks/{theirs['id']}"),
        ("DELETE", f"/v1/webhooks/{theirs['id']}"),
        ("GET", f"/v1/webhooks/{theirs['id']}/deliveries"),
        ("POST", f"/v1/webhooks/{theirs['id']}/deliveries/{new_id()}/retry"),
    ]:
        r = await client.request(method, path, headers=CRM)
        assert r.status_code == 403, (method, path)
    assert (await client.get(f"/v1/webhooks/{theirs['id']}", headers=SLACK)).status_code == 200
    everything = (await client.get("/v1/webhooks", headers=ADMIN)).json()
    assert {s["id"] for s in everything} == {mine["id"], theirs["id"]}
    assert (await client.delete(f"/v1/webhooks/{theirs['id']}", headers=ADMIN)).status_code == 204


async def test_unknown_ids_are_404(service: Service) -> None:
    client, _ = service
    sub = await register(client, URL)
    assert (await client.get(f"/v1/webhooks/{new_id()}", headers=CRM)).status_code == 404
    assert (await client.delete(f"/v1/webhooks/{new_id()}", headers=CRM)).status_code == 404
    r = await client.post(f"/v1/webhooks/{sub['id']}/deliveries/{new_id()}/retry", headers=CRM)
    assert r.status_code == 404


async def test_malformed_ids_are_422_not_500(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/webhooks/a%00b", headers=CRM)
    assert r.status_code == 422
    # A NUL anywhere in the path is refused before routing (leadflow_shared.errors).
    assert r.json()["fields"][0]["field"] == "path"


async def test_deleting_deactivates_and_cancels_pending_deliveries(service: Service) -> None:
    client, runtime = service
    sub = await register(client, URL)
    await runtime.state["delivery_worker"].stop()  # keep the delivery pending
    await deliver(runtime, LeadCaptured(lead_id=new_id(), email="a@x.io", captured_at=utcnow()))
    assert [d["status"] for d in await deliveries_of(client, sub["id"])] == ["pending"]
    assert (await client.delete(f"/v1/webhooks/{sub['id']}", headers=CRM)).status_code == 204
    assert (await client.get("/v1/webhooks", headers=CRM)).json() == []
    listed = (await client.get("/v1/webhooks?include_inactive=true", headers=CRM)).json()
    assert listed[0]["active"] is False
    [cancelled] = await deliveries_of(client, sub["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["next_attempt_at"] is None
    # A deactivated subscription gets no new deliveries, and deleting again changes nothing.
    await deliver(runtime, LeadCaptured(lead_id=new_id(), email="b@x.io", captured_at=utcnow()))
    assert len(await deliveries_of(client, sub["id"])) == 1
    assert (await client.delete(f"/v1/webhooks/{sub['id']}", headers=CRM)).status_code == 204


async def test_consumer_skips_event_types_no_active_subscription_wants(
    service: Service,
) -> None:
    client, runtime = service
    registry = runtime.spec.handlers
    assert registry is not None
    await subscribed_types.reload()
    assert not registry.handles("lead.scored")
    assert registry.handles("lead.erased")  # stored bodies are erased whatever is subscribed
    created = await register(client, "https://crm.example.com/hook", ["lead.scored"])
    assert registry.handles("lead.scored")  # invalidated by the commit, before any reload
    await subscribed_types.reload()
    assert registry.handles("lead.scored")
    assert not registry.handles("lead.assigned")
    r = await client.delete(f"/v1/webhooks/{created['id']}", headers=CRM)
    assert r.status_code == 204, r.text
    await subscribed_types.reload()
    assert not registry.handles("lead.scored")


async def test_a_run_of_events_is_fanned_out_to_each_wanting_subscription(
    service: Service,
) -> None:
    client, runtime = service
    scored_only = await register(client, "https://crm.example.com/a", ["lead.scored"])
    everything = await register(client, "https://crm.example.com/b", ["*"])
    events = [
        LeadScored(
            lead_id=f"lead-{i}",
            score=50,
            fit=30,
            engagement=20,
            grade="B",
            mql=True,
            explanation=[],
            rules_version=1,
            scored_at=utcnow(),
        )
        for i in range(3)
    ]
    ids = [new_id() for _ in events]
    assert await deliver_batch(runtime, list(events), event_ids=list(ids)) == [True] * 3
    assert await deliver_batch(runtime, list(events), event_ids=list(ids)) == [False] * 3
    async with runtime.db.read() as session:
        rows = (await session.execute(select(Delivery.subscription_id, Delivery.event_id))).all()
    assert sorted(rows) == sorted(
        (sub["id"], event_id) for sub in (scored_only, everything) for event_id in ids
    )
