"""``GET /v1/scores/{lead_id}``: shape, auth, ownership per role from ``leads.routing``."""

from __future__ import annotations

import httpx
import pytest

from leadflow_shared.events import AccountAssigned, LeadAssigned, LeadCaptured, LeadReassigned
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver

Service = tuple[httpx.AsyncClient, ServiceRuntime]


async def capture_ideal_lead(runtime: ServiceRuntime, lead_id: str = "L1") -> None:
    await deliver(
        runtime,
        LeadCaptured(
            lead_id=lead_id,
            email="ann@example.com",
            employees=1200,
            title="Head of Sales",
            country="GB",
            captured_at=utcnow(),
        ),
    )


def assigned(lead_id: str, role: str, owner: str) -> LeadAssigned:
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "role": role,
            "owner": owner,
            "rule": "emea",
            "strategy": "round_robin",
            "reason": "territory",
        }
    )


async def test_score_is_returned_with_its_explanation(service: Service) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    r = await client.get("/v1/scores/L1", headers=auth_header("manager"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["lead_id"] == "L1"
    assert (body["score"], body["fit"], body["engagement"]) == (60, 60, 0)
    assert (body["grade"], body["mql"], body["rules_version"]) == ("B", True, 1)
    assert body["explanation"] == [
        {"factor": "company size 200+", "points": 20},
        {"factor": "company size 1000+", "points": 10},
        {"factor": "senior title", "points": 20},
        {"factor": "target country", "points": 10},
    ]
    assert body["scored_at"].endswith(("Z", "+00:00"))


@pytest.mark.parametrize("role", ["admin", "manager", "integration"])
async def test_managers_admins_and_integrations_read_every_score(
    service: Service, role: str
) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    assert (await client.get("/v1/scores/L1", headers=auth_header(role))).status_code == 200


async def test_unknown_lead_is_404(service: Service) -> None:
    client, _ = service
    r = await client.get(f"/v1/scores/{new_id()}", headers=auth_header("manager"))
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


async def test_missing_or_bad_token_is_401(service: Service) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    assert (await client.get("/v1/scores/L1")).status_code == 401
    bad = {"Authorization": "Bearer not-a-jwt"}
    assert (await client.get("/v1/scores/L1", headers=bad)).status_code == 401


@pytest.mark.parametrize("role", ["sdr", "ae", "am"])
async def test_rep_without_ownership_is_403(service: Service, role: str) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    r = await client.get("/v1/scores/L1", headers=auth_header(role, "rep-9"))
    assert r.status_code == 403


async def test_assigned_sdr_reads_the_score_but_another_sdr_does_not(service: Service) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    await deliver(runtime, assigned("L1", "sdr", "sdr-1"))
    assert (await client.get("/v1/scores/L1", headers=auth_header("sdr", "sdr-1"))).is_success
    other = await client.get("/v1/scores/L1", headers=auth_header("sdr", "sdr-2"))
    assert other.status_code == 403
    # Owning the lead as SDR does not grant the AE view to the same id.
    as_ae = await client.get("/v1/scores/L1", headers=auth_header("ae", "sdr-1"))
    assert as_ae.status_code == 403


async def test_reassignment_moves_read_access_to_the_new_owner(service: Service) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    await deliver(runtime, assigned("L1", "ae", "ae-1"))
    await deliver(
        runtime,
        LeadReassigned(
            lead_id="L1", role="ae", previous_owner="ae-1", owner="ae-2", reason="sla breached"
        ),
    )
    assert (await client.get("/v1/scores/L1", headers=auth_header("ae", "ae-1"))).status_code == 403
    assert (await client.get("/v1/scores/L1", headers=auth_header("ae", "ae-2"))).is_success


async def test_account_manager_reads_the_score_of_their_account(service: Service) -> None:
    client, runtime = service
    await capture_ideal_lead(runtime)
    await deliver(
        runtime,
        AccountAssigned(
            lead_id="L1", owner="am-1", deal_id=new_id(), rule="r", strategy="s", reason="won"
        ),
    )
    assert (await client.get("/v1/scores/L1", headers=auth_header("am", "am-1"))).is_success


async def test_overlong_lead_id_is_422(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/scores/" + "x" * 65, headers=auth_header("manager"))
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "lead_id"
