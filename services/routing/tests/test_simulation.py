"""What-if simulation (contract v2): draft rules in the shape GET returns, draft rep changes,
a period and roles → per rep actual vs draft, spread and gini per pool, leads that would
change owner, capacity breaches. Deterministic; nothing stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from leadflow_routing.simulation import gini, spread
from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")


def test_spread_and_gini() -> None:
    assert spread([]) == 0 and gini([]) == 0.0
    assert spread([3, 3, 3]) == 0 and gini([3, 3, 3]) == 0.0
    assert gini([0, 0, 0]) == 0.0
    assert spread([0, 0, 6]) == 6 and gini([0, 0, 6]) == pytest.approx(2 / 3, abs=1e-4)
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25, abs=1e-4)


async def _rep(client: httpx.AsyncClient, rep_id: str, role: str = "sdr", **extra: Any) -> None:
    body = {"id": rep_id, "name": rep_id.title(), "email": f"{rep_id}@x.io", "role": role}
    r = await client.post("/v1/reps", json={**body, **extra}, headers=MANAGER)
    assert r.status_code == 201, r.text


async def _simulate(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/v1/routing/simulate", json=body, headers=MANAGER)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_draft_reps_change_who_gets_what_and_fairness_per_pool(
    service: Service, deliver_mqls: Any
) -> None:
    client, runtime = service
    await _rep(client, "ana")
    await _rep(client, "ben")
    await deliver_mqls(runtime, 6)  # round robin: ana 3, ben 3
    rules = (await client.get("/v1/routing/rules", headers=MANAGER)).json()
    assert "version" in rules and "created_at" in rules  # sent back as GET gave it
    reps = (await client.get("/v1/reps", headers=MANAGER)).json()
    ben = next(r for r in reps if r["id"] == "ben")
    draft = {
        "rules": rules,
        # ben as GET returned him, switched off; a rep who does not exist yet.
        "reps": [{**ben, "active": False}, {"id": "dan", "role": "SDR"}],
        "roles": ["SDR"],
    }
    first = await _simulate(client, draft)
    assert first == await _simulate(client, draft)  # deterministic
    per_rep = {row["rep_id"]: row for row in first["per_rep"]}
    assert per_rep["ana"] == {
        "rep_id": "ana",
        "role": "sdr",
        "actual": 3,
        "simulated": 3,
        "delta": 0,
    }
    assert per_rep["ben"]["actual"] == 3 and per_rep["ben"]["simulated"] == 0
    assert per_rep["dan"]["actual"] == 0 and per_rep["dan"]["simulated"] == 3
    assert first["leads"] == 6 and first["changed"] == len(first["changed_leads"])
    assert {a["simulated_owner"] for a in first["changed_leads"]} <= {"dan", "ana"}
    assert all(a["actual_owner"] != a["simulated_owner"] for a in first["changed_leads"])
    pool = first["pools"]["sdr:all-sdrs"]
    assert pool["actual"]["counts"]["ana"] == 3 and pool["actual"]["counts"]["ben"] == 3
    assert pool["draft"]["counts"] == {"ana": 3, "ben": 0, "dan": 3}
    assert pool["actual"]["spread"] == 3 and pool["draft"]["spread"] == 3
    assert pool["actual"]["gini"] > 0 and pool["draft"]["gini"] > 0
    # Nothing was stored: the directory is as it was.
    after = {r["id"]: r for r in (await client.get("/v1/reps", headers=MANAGER)).json()}
    assert "dan" not in after and after["ben"]["active"] is True


async def test_capacity_breaches_and_leads_nobody_could_take(
    service: Service, deliver_mqls: Any
) -> None:
    client, runtime = service
    await _rep(client, "ana")
    await deliver_mqls(runtime, 4)  # ana gets all 4 today
    draft = {
        "rules": {"rules": [{"id": "ana-only", "role": "sdr", "pool": {"reps": ["ana"]}}]},
        "reps": [{"id": "ana", "capacity_per_day": 1}],
    }
    body = await _simulate(client, draft)
    assert body["unassigned"] == 3 and sum(body["unassigned_reasons"].values()) == 3
    (breach,) = body["capacity_breaches"]
    assert breach["rep_id"] == "ana" and breach["capacity_per_day"] == 1
    assert breach["actual"] == 4 and breach["simulated"] == 1
    assert breach["turned_away_under_draft"] == 3 and breach["actual_over_capacity"] is True


async def test_period_roles_and_bad_input(service: Service, deliver_mqls: Any) -> None:
    client, runtime = service
    await _rep(client, "ana")
    await deliver_mqls(runtime, 2)
    rules = {"rules": [{"id": "all", "role": "sdr"}]}
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert (await _simulate(client, {"rules": rules, "from": later}))["leads"] == 0
    earlier = (utcnow() - timedelta(hours=1)).isoformat()
    assert (await _simulate(client, {"rules": rules, "from": earlier, "to": later}))["leads"] == 2
    # No lead reached an AE yet: nothing to replay for that role.
    ae = await _simulate(client, {"rules": rules, "roles": ["ae"]})
    assert ae["leads"] == 0 and ae["roles"] == []
    for bad, field in [
        ({"rules": rules, "reps": [{"id": "zed"}]}, "role"),
        ({"rules": rules, "roles": ["cfo"]}, "roles"),
        ({"rules": rules, "from": later, "to": earlier}, "to"),
        ({"rules": rules, "from": "2026-12-01T00:00:00"}, "from"),
    ]:
        r = await client.post("/v1/routing/simulate", json=bad, headers=MANAGER)
        assert r.status_code == 422, (bad, r.text)
        assert field in r.text


async def test_rules_as_get_returned_them_can_be_put_back(service: Service) -> None:
    client, _ = service
    await _rep(client, "ana")
    r = await client.put(
        "/v1/routing/rules",
        json={"rules": [{"id": "all", "role": "sdr"}]},
        headers=MANAGER,
    )
    assert r.status_code == 200, r.text
    got = (await client.get("/v1/routing/rules", headers=MANAGER)).json()
    again = await client.put("/v1/routing/rules", json=got, headers=MANAGER)
    assert again.status_code == 200, again.text
    assert again.json()["version"] == got["version"] + 1
    bad = await client.put("/v1/routing/rules", json={**got, "colour": "red"}, headers=MANAGER)
    assert bad.status_code == 422 and "colour" in bad.text
