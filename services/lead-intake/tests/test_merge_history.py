"""Merges that keep history (contract v2): blanks filled, changed values kept in
``history``, first and last touch attribution, consent with time, source and text."""

from __future__ import annotations

import httpx

from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")
CSV = {**WEB, "content-type": "text/csv"}


async def test_a_merge_fills_blanks_and_keeps_what_it_changed(service: Service) -> None:
    client, runtime = service
    first = await client.post(
        "/v1/leads",
        json={
            "email": "Jane.Doe+ads@gmail.com",
            "company": "BigCorp",
            "title": "Engineer",
            "source": "google-ads",
            "campaign": "q3-search",
            "utm": {"source": "google", "medium": "cpc"},
        },
        headers=WEB,
    )
    lead_id = first.json()["lead_id"]
    second = await client.post(
        "/v1/leads",
        json={
            "email": "janedoe@gmail.com",
            "title": "VP Engineering",
            "phone": "+49 30 1234567",
            "source": "webinar",
            "campaign": "q4-webinar",
            "utm": {"source": "linkedin"},
            "consent": {"marketing": True, "text": "privacy-2026-10"},
        },
        headers=WEB,
    )
    assert second.status_code == 200 and second.json()["lead_id"] == lead_id
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=WEB)).json()
    # Blanks filled, changed values replaced, the older ones kept.
    assert (lead["company"], lead["title"], lead["phone"]) == (
        "BigCorp",
        "VP Engineering",
        "+49301234567",
    )
    assert lead["seniority"] == "vp"
    changes = {h["field"]: (h["old"], h["new"], h["source"]) for h in lead["history"]}
    assert changes["title"] == ("Engineer", "VP Engineering", "webinar")
    assert changes["source"] == ("google-ads", "webinar", "webinar")
    assert changes["campaign"] == ("q3-search", "q4-webinar", "webinar")
    assert changes["utm"][0] == {"source": "google", "medium": "cpc"}
    assert "phone" not in changes  # a blank filled is not a change
    # First touch stays; last touch is this submission's.
    assert lead["first_touch"]["source"] == "google-ads"
    assert lead["first_touch"]["utm"] == {"source": "google", "medium": "cpc"}
    assert lead["last_touch"]["source"] == "webinar"
    assert lead["last_touch"]["campaign"] == "q4-webinar"
    assert lead["last_touch"]["utm"] == {"source": "linkedin"}
    assert lead["first_touch"]["at"] <= lead["last_touch"]["at"]
    # Consent: when, through what, to which text.
    consent = lead["consent"]
    assert consent["marketing"] is True and consent["text"] == "privacy-2026-10"
    assert consent["source"] == "webinar" and consent["at"]
    # The events carry the same.
    (merged,) = await outbox_events(runtime, "lead.merged")
    assert merged["first_touch"]["source"] == "google-ads"
    assert merged["last_touch"]["source"] == "webinar"
    assert merged["consent"]["text"] == "privacy-2026-10"
    assert merged["consent_marketing"] is True

    # A new consent text version is recorded, the old consent kept in history.
    await client.post(
        "/v1/leads",
        json={"email": "janedoe@gmail.com", "consent": {"marketing": True, "text": "v2"}},
        headers=WEB,
    )
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=WEB)).json()
    assert lead["consent"]["text"] == "v2" and lead["consent"]["source"] == "api"
    (old_consent,) = [h for h in lead["history"] if h["field"] == "consent"]
    assert old_consent["old"]["text"] == "privacy-2026-10"
    # A submission without consent never withdraws it.
    await client.post("/v1/leads", json={"email": "janedoe@gmail.com"}, headers=WEB)
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=WEB)).json()
    assert lead["consent"]["marketing"] is True


async def test_an_import_is_a_touch_and_keeps_history(service: Service) -> None:
    client, _ = service
    first = await client.post(
        "/v1/leads", json={"email": "bo@acme.com", "title": "CTO"}, headers=WEB
    )
    csv_text = "Email,Job Title,Lead Source\nbo@acme.com,CEO,trade-show\n"
    r = await client.post("/v1/leads/import", content=csv_text, headers=CSV)
    assert r.json()["merged"] == 1
    lead = (await client.get(f"/v1/leads/{first.json()['lead_id']}", headers=WEB)).json()
    assert lead["title"] == "CEO"
    assert [(h["field"], h["old"], h["source"]) for h in lead["history"]] == [
        ("title", "CTO", "trade-show")
    ]
    assert lead["first_touch"]["source"] is None
    assert lead["last_touch"]["source"] == "trade-show"
    assert lead["consent"] == {"marketing": False, "at": None, "source": None, "text": None}


async def test_erasure_clears_history_and_given_values(service: Service) -> None:
    client, _ = service
    lead_id = (
        await client.post(
            "/v1/leads", json={"email": "e@x.io", "phone": "call me", "title": "A"}, headers=WEB
        )
    ).json()["lead_id"]
    await client.post("/v1/leads", json={"email": "e@x.io", "title": "B"}, headers=WEB)
    r = await client.delete(f"/v1/leads/{lead_id}", headers=auth_header("admin", "admin"))
    assert r.status_code == 202
    lead = (await client.get(f"/v1/leads/{lead_id}", headers=WEB)).json()
    assert lead["erased"] is True
    assert lead["history"] == [] and lead["unnormalized"] == {}
    assert lead["first_touch"] is None and lead["domain"] is None
