"""Engagement batches (per-item outcomes) and anonymous touches that attach on capture."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from leadflow_intake.models import AnonymousEngagement, Engagement
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")


async def test_a_batch_reports_each_item(service: Service) -> None:
    client, runtime = service
    known = (await client.post("/v1/leads", json={"email": "k@x.io"}, headers=WEB)).json()
    r = await client.post(
        "/v1/engagements",
        json={
            "events": [
                {"email": "K@x.io", "type": "email_open"},
                {"lead_id": known["lead_id"], "type": "page_view"},
                {"email": "new@x.io", "type": "webinar_attended"},
                {"email": "k@x.io", "type": "dance"},
                {"email": "k@x.io", "lead_id": known["lead_id"], "type": "page_view"},
                {"lead_id": "missing", "type": "page_view"},
                {"type": "page_view", "surprise": 1},
            ]
        },
        headers=WEB,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["pending"], body["rejected"]) == (2, 1, 4)
    statuses = [(x["index"], x["status"]) for x in body["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "accepted"),
        (2, "pending"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "rejected"),
        (6, "rejected"),
    ]
    errors = {x["index"]: {e["field"] for e in x["errors"]} for x in body["results"]}
    assert errors[3] == {"type"} and errors[5] == {"lead_id"} and "surprise" in errors[6]
    assert body["results"][0]["lead_id"] == known["lead_id"]
    assert body["results"][2]["lead_id"] is None
    events = await outbox_events(runtime, "engagement.recorded")
    assert [e["type"] for e in events] == ["email_open", "page_view"]
    # An empty batch, or one too large, is a 422 naming events.
    r = await client.post("/v1/engagements", json={"events": []}, headers=WEB)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "events"


async def test_an_anonymous_touch_attaches_when_the_lead_appears(service: Service) -> None:
    client, runtime = service
    r = await client.post(
        "/v1/engagements",
        json={
            "email": "Jane.Doe@gmail.com",
            "type": "webinar_attended",
            "occurred_at": "2026-11-20T10:00:00Z",
            "properties": {"webinar": "q4-launch"},
        },
        headers=WEB,
    )
    assert r.status_code == 202 and r.json()["status"] == "pending"
    assert r.json()["lead_id"] is None
    touch_id = r.json()["engagement_id"]
    assert await outbox_events(runtime, "engagement.recorded") == []
    # The lead arrives later, spelled otherwise (plus tag, gmail dots): same person.
    lead = await client.post("/v1/leads", json={"email": "janedoe+form@gmail.com"}, headers=WEB)
    lead_id = lead.json()["lead_id"]
    (event,) = await outbox_events(runtime, "engagement.recorded")
    assert (event["lead_id"], event["engagement_id"], event["type"]) == (
        lead_id,
        touch_id,
        "webinar_attended",
    )
    assert event["properties"] == {"webinar": "q4-launch"}
    assert event["occurred_at"].startswith("2026-11-20T10:00:00")
    # After the lead's own event, on the engagement topic.
    types = [e["_type"] for e in await outbox_events(runtime)]
    assert types.index("lead.captured") < types.index("engagement.recorded")
    async with runtime.db.sessions() as session:
        assert (await session.scalars(select(AnonymousEngagement))).all() == []
        (stored,) = (await session.scalars(select(Engagement))).all()
        assert stored.lead_id == lead_id and stored.id == touch_id
    # Attached once: a later merge brings nothing more.
    await client.post("/v1/leads", json={"email": "jane.doe@gmail.com"}, headers=WEB)
    assert len(await outbox_events(runtime, "engagement.recorded")) == 1


async def test_touches_attach_to_leads_from_a_csv_import(service: Service) -> None:
    client, runtime = service
    for email in ("a@corp.io", "b@corp.io"):
        await client.post(
            "/v1/engagements", json={"email": email, "type": "content_download"}, headers=WEB
        )
    r = await client.post(
        "/v1/leads/import",
        content=b"email\nA@corp.io\nb@corp.io\nc@corp.io\n",
        headers={**WEB, "content-type": "text/csv"},
    )
    assert r.json()["accepted"] == 3
    events = await outbox_events(runtime, "engagement.recorded")
    assert len(events) == 2
    table = runtime.spec.tables.outbox
    async with runtime.db.sessions() as session:
        topics = set(
            (
                await session.scalars(
                    select(table.c.topic).where(table.c.event_type == "engagement.recorded")
                )
            ).all()
        )
    assert topics == {"leads.engagement"}


async def test_contract_v2_engagement_types_in_any_case(service: Service) -> None:
    client, runtime = service
    known = (await client.post("/v1/leads", json={"email": "v2@x.io"}, headers=WEB)).json()
    r = await client.post(
        "/v1/engagements",
        json={
            "events": [
                {"lead_id": known["lead_id"], "type": kind}
                for kind in ("contact_sales", "Unsubscribe", "EMAIL_BOUNCE", "trial_signup")
            ]
        },
        headers=WEB,
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 4
    recorded = [e["type"] for e in await outbox_events(runtime, "engagement.recorded")]
    assert recorded == ["contact_sales", "unsubscribe", "email_bounce", "trial_signup"]
