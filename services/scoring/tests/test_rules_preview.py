"""``POST /v1/scoring/rules/preview``: what a draft would change, before saving it."""

from __future__ import annotations

from typing import Any

import httpx

from leadflow_scoring.rules import default_rules
from leadflow_shared.events import EngagementRecorded, LeadCaptured
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "mgr-7")


async def _lead(runtime: ServiceRuntime, **profile: Any) -> str:
    lead_id = new_id()
    await deliver(
        runtime,
        LeadCaptured(lead_id=lead_id, email=f"{lead_id}@x.io", captured_at=utcnow(), **profile),
    )
    return lead_id


async def test_preview_compares_the_draft_with_the_rules_in_force(service: Service) -> None:
    client, runtime = service
    # Default rules: 75 fit points (big, VP, US, company) → an MQL; 20 → not; 5 → not.
    strong = await _lead(
        runtime, employees=2500, title="VP Sales", country="US", company="Acme", industry="fintech"
    )
    middling = await _lead(runtime, employees=500, company="Mid Co")  # 25 fit points
    weak = await _lead(runtime, company="Tiny")  # 5 fit points
    await deliver(
        runtime,
        EngagementRecorded(
            lead_id=middling,
            engagement_id=new_id(),
            type="pricing_page_view",
            occurred_at=utcnow(),
        ),
    )  # 40 points: still under 50
    before = await client.get(f"/v1/scores/{middling}", headers=MANAGER)
    assert before.status_code == 200 and before.json()["mql"] is False

    rules_in_force = (await client.get("/v1/scoring/rules", headers=MANAGER)).json()
    draft = {**rules_in_force["rules"], "mql_threshold": 30}
    # The GET answer's shape is accepted: its version and authorship are ignored.
    r = await client.post(
        "/v1/scoring/rules/preview", json={**rules_in_force, "rules": draft}, headers=MANAGER
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leads"] == 3 and body["complete"] is True and body["rules_version"] == 1
    assert body["current"]["mql"] == 1 and body["draft"]["mql"] == 2
    assert body["would_become_mql"] == 1 and body["would_stop_meeting_mql_rule"] == 0
    assert body["changed"] == 1
    (example,) = body["sample"]
    assert example["lead_id"] == middling
    assert example["current"]["mql"] is False and example["draft"]["mql"] is True
    assert example["current"]["score"] == example["draft"]["score"] == 40
    assert sum(body["current"]["grades"].values()) == 3
    assert sum(body["draft"]["fit_grades"].values()) == 3
    assert weak not in {e["lead_id"] for e in body["sample"]}
    assert strong not in {e["lead_id"] for e in body["sample"]}

    # Nothing was stored: same rules version, same score.
    assert (await client.get("/v1/scoring/rules", headers=MANAGER)).json()["version"] == 1
    after = await client.get(f"/v1/scores/{middling}", headers=MANAGER)
    assert after.json() == before.json()


async def test_preview_limit_sample_and_validation(service: Service) -> None:
    client, runtime = service
    for _ in range(3):
        await _lead(runtime, employees=500, company="Mid")
    draft = {**default_rules().model_dump(mode="json"), "mql_threshold": 10}
    r = await client.post(
        "/v1/scoring/rules/preview",
        json={"rules": draft, "limit": 2, "sample": 1},
        headers=MANAGER,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["leads"] == 2 and body["complete"] is False
    assert body["changed"] == 2 and len(body["sample"]) == 1
    bad = await client.post(
        "/v1/scoring/rules/preview",
        json={"rules": {**draft, "mql_matrix": {"A": 9}}},
        headers=MANAGER,
    )
    assert bad.status_code == 422 and "mql_matrix" in bad.text
    sdr = await client.post(
        "/v1/scoring/rules/preview", json={"rules": draft}, headers=auth_header("sdr", "s")
    )
    assert sdr.status_code == 403
