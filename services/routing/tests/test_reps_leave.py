"""Reps' managers and planned out-of-office periods: the API, and routing skipping a rep
while a period is on (the decision says why)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from leadflow_shared.events import LeadCaptured
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, mql_scored

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _create(
    client: httpx.AsyncClient, rep_id: str, role: str, **fields: Any
) -> httpx.Response:
    body = {"id": rep_id, "name": rep_id.title(), "email": f"{rep_id}@acme-demo.com"}
    return await client.post("/v1/reps", json={**body, "role": role, **fields}, headers=MANAGER)


async def _mql(runtime: ServiceRuntime) -> str:
    lead_id = new_id()
    await deliver(runtime, LeadCaptured(lead_id=lead_id, email="x@y.io", captured_at=utcnow()))
    await deliver(
        runtime,
        mql_scored(lead_id),
    )
    return lead_id


def _iso(delta: timedelta) -> str:
    return (utcnow() + delta).isoformat()


@BOTH
async def test_manager_and_planned_leave_through_the_api(any_service: Service) -> None:
    client, _ = any_service
    assert (await _create(client, "maya", "manager")).status_code == 201
    leave = [
        {"from": _iso(timedelta(days=10)), "to": _iso(timedelta(days=17)), "reason": "vacation"},
        {"from": _iso(timedelta(days=-1)), "to": _iso(timedelta(days=1)), "reason": "training"},
    ]
    r = await _create(client, "ana", "sdr", manager="maya", out_of_office_periods=leave)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["manager"] == "maya" and body["out_of_office"] is False
    # Kept in order of start, shown as given.
    assert [p["reason"] for p in body["out_of_office_periods"]] == ["training", "vacation"]
    assert set(body["out_of_office_periods"][0]) == {"from", "to", "reason"}
    assert (await client.get("/v1/reps/ana", headers=MANAGER)).json() == body

    # Contract v2 spelling: the periods as out_of_office (the v1 flag still works too).
    r = await _create(client, "ben", "sdr", out_of_office=leave[:1])
    assert r.status_code == 201, r.text
    assert r.json()["out_of_office"] is False and len(r.json()["out_of_office_periods"]) == 1
    r = await client.patch("/v1/reps/ben", json={"out_of_office": True}, headers=MANAGER)
    assert r.json()["out_of_office"] is True and len(r.json()["out_of_office_periods"]) == 1

    # Overlapping periods: 422 naming the field, whichever spelling.
    overlapping = [
        {"from": _iso(timedelta(days=1)), "to": _iso(timedelta(days=5))},
        {"from": _iso(timedelta(days=4)), "to": _iso(timedelta(days=6))},
    ]
    for field in ("out_of_office_periods", "out_of_office"):
        r = await client.patch("/v1/reps/ana", json={field: overlapping}, headers=MANAGER)
        assert r.status_code == 422, r.text
        assert [f["field"] for f in r.json()["fields"]] == [field], r.text
        assert "overlap" in r.json()["fields"][0]["message"]
    r = await _create(client, "cleo", "sdr", out_of_office_periods=overlapping)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "out_of_office_periods"
    backwards = [{"from": _iso(timedelta(days=2)), "to": _iso(timedelta(days=1))}]
    r = await client.patch(
        "/v1/reps/ana", json={"out_of_office_periods": backwards}, headers=MANAGER
    )
    assert r.status_code == 422 and r.json()["fields"][0]["field"].startswith(
        "out_of_office_periods"
    )
    naive = [{"from": "2026-12-01T00:00:00", "to": "2026-12-02T00:00:00"}]
    r = await client.patch("/v1/reps/ana", json={"out_of_office_periods": naive}, headers=MANAGER)
    assert r.status_code == 422

    # The manager must be another known rep; null clears it.
    for manager in ("nobody", "ana"):
        r = await client.patch("/v1/reps/ana", json={"manager": manager}, headers=MANAGER)
        assert r.status_code == 422 and r.json()["fields"][0]["field"] == "manager", r.text
    r = await client.patch("/v1/reps/ana", json={"manager": None}, headers=MANAGER)
    assert r.status_code == 200 and r.json()["manager"] is None

    # A rep plans their own leave; not their manager.
    ana = auth_header("sdr", "ana")
    r = await client.patch("/v1/reps/ana", json={"out_of_office_periods": []}, headers=ana)
    assert r.status_code == 200 and r.json()["out_of_office_periods"] == []
    r = await client.patch("/v1/reps/ana", json={"manager": "maya"}, headers=ana)
    assert r.status_code == 403


async def test_rep_on_planned_leave_is_skipped_and_the_decision_says_why(
    service: Service,
) -> None:
    client, runtime = service
    on_leave = [
        {"from": _iso(timedelta(hours=-1)), "to": _iso(timedelta(days=3)), "reason": "vacation"}
    ]
    later = [{"from": _iso(timedelta(days=30)), "to": _iso(timedelta(days=31))}]
    assert (await _create(client, "ana", "sdr", out_of_office_periods=on_leave)).status_code == 201
    assert (await _create(client, "ben", "sdr", out_of_office_periods=later)).status_code == 201
    for _ in range(3):
        lead_id = await _mql(runtime)
        body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
        assert body["owners"]["sdr"] == "ben"
        (why,) = body["history"][0]["skipped"].values()
        assert why.startswith("out of office (planned ") and why.endswith(": vacation)")

    # Her leave cut short: she is back in the rotation at once.
    r = await client.patch("/v1/reps/ana", json={"out_of_office_periods": []}, headers=MANAGER)
    assert r.status_code == 200
    lead_id = await _mql(runtime)
    body = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()
    assert body["owners"]["sdr"] == "ana" and body["history"][0]["skipped"] == {}
