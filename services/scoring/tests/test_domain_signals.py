"""Domain signals from capture (free mail, disposable, role address, seniority, function,
domain, account match) are kept in the profile and can be fit factors."""

from __future__ import annotations

import httpx

from leadflow_scoring.rules import default_rules
from leadflow_shared.events import LeadCaptured
from leadflow_shared.events.schemas import AccountMatch
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "boss")

SIGNAL_RULES = [
    {
        "factor": "disposable address",
        "field": "disposable",
        "op": "eq",
        "value": True,
        "points": -40,
    },
    {"factor": "free mail", "field": "free_mail", "op": "eq", "value": True, "points": -10},
    {"factor": "role address", "field": "role_account", "op": "eq", "value": True, "points": -5},
    {"factor": "known account", "field": "account_match", "op": "exists", "points": 25},
    {
        "factor": "decision maker",
        "field": "seniority",
        "op": "in",
        "value": ["c_level", "vp"],
        "points": 15,
    },
    {"factor": "sales function", "field": "function", "op": "eq", "value": "sales", "points": 5},
    {"factor": "our partner", "field": "domain", "op": "eq", "value": "partner.io", "points": 7},
]


async def _score(client: httpx.AsyncClient, lead_id: str) -> dict[str, int]:
    r = await client.get(f"/v1/scores/{lead_id}", headers=MANAGER)
    assert r.status_code == 200, r.text
    return {f["factor"]: f["points"] for f in r.json()["explanation"]}


async def test_domain_signals_are_fit_factors(service: Service) -> None:
    client, runtime = service
    rules = {**default_rules().model_dump(mode="json"), "fit": SIGNAL_RULES}
    r = await client.put("/v1/scoring/rules", json=rules, headers=MANAGER)
    assert r.status_code == 200, r.text

    customer, throwaway, legacy = new_id(), new_id(), new_id()
    account = AccountMatch(account_id="acc-1", name="Partner", match="domain", confidence=1.0)
    await deliver(
        runtime,
        LeadCaptured(
            lead_id=customer,
            email="cro@partner.io",
            captured_at=utcnow(),
            domain="partner.io",
            seniority="c_level",
            function="sales",
            free_mail=False,
            account=account,
        ),
    )
    await deliver(
        runtime,
        LeadCaptured(
            lead_id=throwaway,
            email="info@mailinator.com",
            captured_at=utcnow(),
            free_mail=True,
            disposable=True,
            role_account=True,
        ),
    )
    # An event from before contract v2: no signals at all, nothing counted, no error.
    await deliver(runtime, LeadCaptured(lead_id=legacy, email="x@y.io", captured_at=utcnow()))

    assert await _score(client, customer) == {
        "known account": 25,
        "decision maker": 15,
        "sales function": 5,
        "our partner": 7,
    }
    assert await _score(client, throwaway) == {
        "disposable address": -40,
        "free mail": -10,
        "role address": -5,
    }
    assert await _score(client, legacy) == {}


async def test_a_signal_rule_of_the_wrong_kind_is_refused(service: Service) -> None:
    client, _ = service
    bad = {
        **default_rules().model_dump(mode="json"),
        "fit": [{"factor": "x", "field": "free_mail", "op": "gte", "value": 1, "points": 1}],
    }
    r = await client.put("/v1/scoring/rules", json=bad, headers=MANAGER)
    assert r.status_code == 422 and "free_mail" in r.text
