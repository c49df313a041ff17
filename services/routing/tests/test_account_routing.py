"""Account-based routing: the lead's matched account (from ``lead.captured``) is kept, rules
may match ``account.owner`` and ``fit_grade``, and strategy ``account_owner`` sends a lead
from a known account to its owner when available, else to the rule's pool by its fallback
rotation, saying which. Every such decision replays to the same owner."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.models import RoutedLead
from leadflow_routing.rules.document import Condition
from leadflow_routing.rules.matching import condition_holds
from leadflow_shared.events import CloudEvent, EventData, LeadCaptured
from leadflow_shared.events.schemas import AccountMatch
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, mql_scored

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")
ACCOUNT_RULE = {
    "id": "accounts",
    "role": "sdr",
    "pool": {"team": "west"},
    "strategy": "account_owner",
    "fallback_strategy": "round_robin",
}


async def _rep(client: httpx.AsyncClient, rep_id: str, **fields: object) -> None:
    body = {"id": rep_id, "name": rep_id, "email": f"{rep_id}@acme-demo.com", "role": "sdr"}
    r = await client.post("/v1/reps", json={**body, "team": "west", **fields}, headers=MANAGER)
    assert r.status_code == 201, r.text


async def _setup(client: httpx.AsyncClient, **owner_fields: object) -> None:
    await _rep(client, "sdr-ana", **owner_fields)
    await _rep(client, "sdr-ben")
    await _rep(client, "sdr-cy")
    r = await client.put("/v1/routing/rules", json={"rules": [ACCOUNT_RULE]}, headers=MANAGER)
    assert r.status_code == 200, r.text


async def _mql(runtime: ServiceRuntime, owner: str | None, *, account: bool = True) -> str:
    lead_id = new_id()
    match = (
        AccountMatch(account_id="acc-1", name="Acme", owner=owner, match="domain", confidence=1.0)
        if account
        else None
    )
    events: list[EventData] = [
        LeadCaptured(
            lead_id=lead_id,
            email="x@acme.io",
            company="Acme",
            country="US",
            captured_at=utcnow(),
            account=match,
        ),
        mql_scored(lead_id),
    ]
    assert runtime.spec.handlers is not None
    async with runtime.db.transaction() as session:
        for data in events:
            event = CloudEvent(
                id=new_id(),
                type=data.event_type,
                source="leadflow/test",
                subject=data.lead_id,
                data=data.model_dump(mode="json"),
            )
            await runtime.spec.handlers.handle_one(session, event, data)
    return lead_id


async def _assigned(client: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)
    assert r.status_code == 200, r.text
    (decision,) = [d for d in r.json()["history"] if d["kind"] == "assigned"]
    replay = await client.get(f"/v1/assignments/{lead_id}/replay", headers=MANAGER)
    assert replay.status_code == 200, replay.text
    assert replay.json()["all_match"] and replay.json()["replayed"] >= 1, replay.json()
    result: dict[str, Any] = decision
    return result


async def _stored_account(runtime: ServiceRuntime, lead_id: str) -> Any:
    async with runtime.db.transaction() as session:
        assert isinstance(session, AsyncSession)
        lead = await session.get(RoutedLead, lead_id)
        assert lead is not None
        return lead.profile.get("account")


async def test_owner_available_gets_the_lead(service: Service) -> None:
    client, runtime = service
    await _setup(client)
    lead_id = await _mql(runtime, "sdr-ana")
    assert await _stored_account(runtime, lead_id) == {
        "account_id": "acc-1",
        "owner": "sdr-ana",
        "match": "domain",
        "confidence": 1.0,
    }
    decision = await _assigned(client, lead_id)
    assert decision["owner"] == "sdr-ana"
    assert decision["strategy"] == "account_owner"
    assert "account owner sdr-ana" in decision["reason"]


async def test_owner_out_of_office_goes_to_the_pool(service: Service) -> None:
    client, runtime = service
    now = utcnow()
    leave = [
        {
            "from": (now - timedelta(hours=1)).isoformat(),
            "to": (now + timedelta(days=3)).isoformat(),
            "reason": "vacation",
        }
    ]
    await _setup(client, out_of_office_periods=leave)
    decision = await _assigned(client, await _mql(runtime, "sdr-ana"))
    assert decision["owner"] in {"sdr-ben", "sdr-cy"}
    assert decision["strategy"] == "round_robin"
    assert "account owner sdr-ana out of office" in decision["reason"]
    assert "vacation" in decision["reason"] and "pool rotation" in decision["reason"]


async def test_owner_at_capacity_goes_to_the_pool(service: Service) -> None:
    client, runtime = service
    await _setup(client, capacity_per_day=1)
    first = await _assigned(client, await _mql(runtime, "sdr-ana"))
    assert first["owner"] == "sdr-ana"
    second = await _assigned(client, await _mql(runtime, "sdr-ana"))
    assert second["owner"] in {"sdr-ben", "sdr-cy"}
    assert "account owner sdr-ana at daily capacity (1/1)" in second["reason"]
    assert "pool rotation" in second["reason"]


async def test_lead_without_account_goes_to_the_pool(service: Service) -> None:
    client, runtime = service
    await _setup(client)
    no_account = await _mql(runtime, None, account=False)
    assert await _stored_account(runtime, no_account) is None
    decision = await _assigned(client, no_account)
    assert decision["owner"] in {"sdr-ben", "sdr-cy", "sdr-ana"}
    assert "lead matched no account; pool rotation" in decision["reason"]
    ownerless = await _assigned(client, await _mql(runtime, None))
    assert "account acc-1 has no owner; pool rotation" in ownerless["reason"]
    # The owner is not an SDR in the directory: the pool.
    stranger = await _assigned(client, await _mql(runtime, "ae-zed"))
    assert "account owner ae-zed is not a sdr; pool rotation" in stranger["reason"]


async def test_rules_match_account_owner_and_fit_grade_when_present() -> None:
    known = {"account": {"account_id": "acc-1", "owner": "sdr-ana"}, "fit_grade": "A"}
    unknown: dict[str, Any] = {"account": None}
    has_owner = Condition(field="account.owner", op="exists")
    no_owner = Condition(field="account.owner", op="not_exists")
    assert condition_holds(has_owner, known) and not condition_holds(has_owner, unknown)
    assert condition_holds(no_owner, unknown) and not condition_holds(no_owner, known)
    assert condition_holds(Condition(field="account.owner", op="eq", value="SDR-ana"), known)
    grade_a = Condition(field="fit_grade", op="in", value=["A", "B"])
    assert condition_holds(grade_a, known) and not condition_holds(grade_a, unknown)


async def test_account_owner_rule_is_validated(service: Service) -> None:
    client, _ = service
    bad = {**ACCOUNT_RULE, "fallback_strategy": "account_owner"}
    r = await client.put("/v1/routing/rules", json={"rules": [bad]}, headers=MANAGER)
    assert r.status_code == 422
    cond = {"field": "account.owner", "op": "not_exists"}
    ok = {"id": "orphans", "role": "sdr", "conditions": [cond]}
    r = await client.put("/v1/routing/rules", json={"rules": [ok]}, headers=MANAGER)
    assert r.status_code == 200, r.text
