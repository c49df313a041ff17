from __future__ import annotations

import httpx

from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")
ADMIN = auth_header("admin", "root")


async def test_engagement_by_email_is_recorded(service: Service) -> None:
    client, runtime = service
    lead_id = (await client.post("/v1/leads", json={"email": "g@x.io"}, headers=WEB)).json()[
        "lead_id"
    ]
    r = await client.post(
        "/v1/engagements",
        json={
            "email": "G@x.io",
            "type": "pricing_page_view",
            "occurred_at": "2026-11-27T09:00:00Z",
        },
        headers=WEB,
    )
    assert r.status_code == 202, r.text
    assert r.json()["lead_id"] == lead_id
    (event,) = await outbox_events(runtime, "engagement.recorded")
    assert event["type"] == "pricing_page_view"


async def test_engagement_validation(service: Service) -> None:
    client, _ = service
    r = await client.post("/v1/engagements", json={"type": "page_view"}, headers=WEB)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "email"
    r = await client.post("/v1/engagements", json={"email": "z@x.io", "type": "dance"}, headers=WEB)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "type"
    r = await client.post(
        "/v1/engagements", json={"email": "z@x.io", "type": "page_view"}, headers=WEB
    )
    assert r.status_code == 202 and r.json()["status"] == "pending"  # kept, not refused
    r = await client.post(
        "/v1/engagements", json={"lead_id": "no-such-lead", "type": "page_view"}, headers=WEB
    )
    assert r.status_code == 404
    r = await client.post(
        "/v1/engagements",
        json={"email": "z@x.io", "type": "page_view", "occurred_at": "2026-11-27T09:00:00"},
        headers=WEB,
    )
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "occurred_at"


async def _form(client: httpx.AsyncClient) -> str:
    r = await client.post(
        "/v1/forms",
        json={
            "name": "contact",
            "allowed_origins": ["https://www.acme.test"],
            "redirect_url": "https://www.acme.test/thanks",
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["form_key"])


async def test_browser_form_post_redirects_and_captures(service: Service) -> None:
    client, runtime = service
    key = await _form(client)
    r = await client.post(
        f"/v1/forms/{key}/submit",
        data={
            "email": "h@x.io",
            "company": "Hx",
            "utm_source": "linkedin",
            "consent_marketing": "on",
            "favourite_colour": "blue",
        },
        headers={"Origin": "https://www.acme.test"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "https://www.acme.test/thanks"
    (event,) = await outbox_events(runtime, "lead.captured")
    assert event["utm"] == {"source": "linkedin"}
    assert event["consent_marketing"] is True
    assert event["custom"] == {"favourite_colour": "blue"}
    assert event["source"] == "form:contact"


async def test_form_refuses_foreign_origin_and_swallows_bots(service: Service) -> None:
    client, runtime = service
    key = await _form(client)
    r = await client.post(
        f"/v1/forms/{key}/submit", data={"email": "i@x.io"}, headers={"Origin": "https://evil.test"}
    )
    assert r.status_code == 403
    r = await client.post(
        f"/v1/forms/{key}/submit",
        data={"email": "i@x.io", "_honeypot": "x"},
        headers={"Origin": "https://www.acme.test", "Accept": "application/json"},
    )
    assert r.status_code == 202
    assert await outbox_events(runtime) == []
    r = await client.post(
        f"/v1/forms/{key}/submit",
        data={"email": "bad"},
        headers={"Origin": "https://www.acme.test", "Accept": "application/json"},
    )
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "email"
    assert (await client.post("/v1/forms/nope/submit", data={})).status_code == 404


async def test_form_submissions_are_rate_limited_per_address(service: Service) -> None:
    client, _ = service
    key = await _form(client)
    headers = {"Origin": "https://www.acme.test", "Accept": "application/json"}
    codes = [
        (
            await client.post(
                f"/v1/forms/{key}/submit", data={"email": f"r{i}@x.io"}, headers=headers
            )
        ).status_code
        for i in range(31)
    ]
    assert codes[:30] == [202] * 30 and codes[30] == 429


async def test_csv_import_reports_rejected_rows(service: Service) -> None:
    client, _ = service
    csv_text = (
        "email,first_name,country,employees,utm_source\n"
        "j@x.io,Jo,DE,40,event\n"
        "not-an-email,Ka,FR,10,event\n"
        "J@x.io,Jo,DE,45,event\n"
        "k@x.io,Ki,ZZ,10,event\n"
    )
    r = await client.post(
        "/v1/leads/import", files={"file": ("show.csv", csv_text, "text/csv")}, headers=WEB
    )
    assert r.status_code == 200, r.text
    body = r.json()
    # An unknown country (ZZ) is kept as given, not a rejection (contract v2).
    assert body["accepted"] == 2 and body["merged"] == 1
    assert [(x["row"], x["errors"][0]["field"]) for x in body["rejected"]] == [(3, "email")]
    r = await client.post(
        "/v1/leads/import", files={"file": ("x.csv", b"\xff\xfe", "text/csv")}, headers=WEB
    )
    assert r.status_code == 422


async def test_form_json_answer_lists_warnings_and_consent_text_is_kept(service: Service) -> None:
    client, runtime = service
    key = await _form(client)
    r = await client.post(
        f"/v1/forms/{key}/submit",
        data={
            "email": "w@x.io",
            "country": "Atlantis",
            "consent_marketing": "yes",
            "consent_text": "privacy-2026-10",
        },
        headers={"Origin": "https://www.acme.test", "Accept": "application/json"},
    )
    assert r.status_code == 202, r.text
    assert [w["field"] for w in r.json()["warnings"]] == ["country"]
    lead = (await client.get(f"/v1/leads/{r.json()['lead_id']}", headers=WEB)).json()
    assert lead["consent"]["text"] == "privacy-2026-10" and lead["consent"]["marketing"]
    assert "consent_text" not in lead["custom"]
    # The same column in a CSV (header synonyms understood).
    r = await client.post(
        "/v1/leads/import",
        content=b"Email,Marketing Consent,Consent Version\nv@x.io,yes,terms-v3\n",
        headers={**WEB, "content-type": "text/csv"},
    )
    assert r.json()["accepted"] == 1
    (event,) = [e for e in await outbox_events(runtime, "lead.captured") if e["email"] == "v@x.io"]
    assert event["consent"]["text"] == "terms-v3"
