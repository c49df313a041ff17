"""Leads nobody could take wait, visibly, and are routed as soon as someone can: SDRs, AEs
and account managers alike (a won account once waited forever for an AM)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from leadflow_routing.models import Rep, RoutedLead
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.sla import SlaTimer
from leadflow_shared.events import DealCreated, DealWon, EventData, LeadCaptured, LeadScored
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, mql_scored, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


async def _rep(client: httpx.AsyncClient, rep_id: str, role: str, **fields: object) -> None:
    body = {"id": rep_id, "name": rep_id.title(), "email": f"{rep_id}@acme-demo.com"}
    r = await client.post("/v1/reps", json={**body, "role": role, **fields}, headers=MANAGER)
    assert r.status_code == 201, r.text


async def _won_account(client: httpx.AsyncClient, runtime: ServiceRuntime) -> str:
    """An MQL taken by ana, qualified to nora, whose deal is won."""
    lead_id = new_id()
    events: list[EventData] = [
        LeadCaptured(lead_id=lead_id, email="x@y.io", company="Acme", captured_at=utcnow()),
        mql_scored(lead_id),
    ]
    for data in events:
        await deliver(runtime, data)
    bant = {"budget": "50k", "authority": "CTO", "need": "routing", "timeline": "Q1"}
    r = await client.post(f"/v1/leads/{lead_id}/qualify", json=bant, headers=MANAGER)
    assert r.status_code == 200 and r.json()["owners"]["ae"] == "nora", r.text
    deal_id = new_id()
    await deliver(
        runtime,
        DealCreated(
            lead_id=lead_id,
            deal_id=deal_id,
            owner="nora",
            stage="discovery",
            probability=10,
            currency="USD",
            created_at=utcnow(),
        ),
    )
    await deliver(
        runtime,
        DealWon(
            lead_id=lead_id,
            deal_id=deal_id,
            owner="nora",
            amount="1000",
            currency="USD",
            closed_at=utcnow(),
        ),
    )
    return lead_id


async def _assignment(client: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _team(client: httpx.AsyncClient) -> None:
    await _rep(client, "ana", "sdr")
    await _rep(client, "nora", "ae")


@BOTH
async def test_won_account_without_an_am_is_assigned_when_an_am_is_created(
    any_service: Service,
) -> None:
    client, runtime = any_service
    await _team(client)
    lead_id = await _won_account(client, runtime)
    body = await _assignment(client, lead_id)
    assert body["status"] == "waiting_for_am" and body["owners"] == {
        "sdr": "ana",
        "ae": "nora",
        "am": None,
    }
    assert await outbox_events(runtime, "account.assigned") == []
    # The timer does not lose it meanwhile (nobody to take it yet).
    assert await SlaTimer(runtime.db, 1).tick() == 0

    await _rep(client, "alex", "am")  # the moment an account manager exists
    body = await _assignment(client, lead_id)
    assert body["status"] == "won" and body["owners"] == {"sdr": "ana", "ae": "nora", "am": "alex"}
    history = body["history"]
    assert isinstance(history, list)
    assert [h["kind"] for h in history][-3:] == ["deal_won", "waiting", "assigned"]
    assert history[-1]["role"] == "am" and history[-1]["owner"] == "alex"
    (account,) = await outbox_events(runtime, "account.assigned")
    assert account["owner"] == "alex" and account["lead_id"] == lead_id
    assert await SlaTimer(runtime.db, 1).tick() == 0  # assigned once


@BOTH
async def test_won_account_waits_for_an_am_with_capacity_or_back_from_leave(
    any_service: Service,
) -> None:
    client, runtime = any_service
    await _team(client)
    await _rep(client, "alex", "am", capacity_per_day=0)
    await _rep(client, "amy", "am", out_of_office=True, out_of_office_until="2099-01-01T00:00:00Z")
    first, second = await _won_account(client, runtime), await _won_account(client, runtime)
    body = await _assignment(client, first)
    history = body["history"]
    assert isinstance(history, list) and body["status"] == "waiting_for_am"
    assert history[-1]["skipped"] == {
        "alex": "at daily capacity (0/0)",
        "amy": "out of office until 2099-01-01T00:00:00+00:00",
    }

    # Alex gets capacity for one account: the longest waiting takes it at once.
    r = await client.patch("/v1/reps/alex", json={"capacity_per_day": 1}, headers=MANAGER)
    assert r.status_code == 200, r.text
    assert (await _assignment(client, first))["owners"] == {
        "sdr": "ana",
        "ae": "nora",
        "am": "alex",
    }
    assert (await _assignment(client, second))["status"] == "waiting_for_am"

    # Amy's leave ends earlier than planned (no API call: the timer notices).
    async with runtime.db.transaction() as session:
        await session.execute(
            update(Rep)
            .where(Rep.id == "amy")
            .values(out_of_office_until=utcnow() - timedelta(seconds=1))
        )
        await RoutingRepository(session).config_changed()
    assert await SlaTimer(runtime.db, 1).tick() == 1
    body = await _assignment(client, second)
    assert body["status"] == "won" and body["owners"] == {"sdr": "ana", "ae": "nora", "am": "amy"}
    assert [e["owner"] for e in await outbox_events(runtime, "account.assigned")] == [
        "alex",
        "amy",
    ]


@BOTH
async def test_leads_nobody_can_take_do_not_hide_the_others(any_service: Service) -> None:
    """The timer claims at most 100 waiting leads a tick; those it still cannot route go
    to the back of the line, so a won account behind them is reached."""
    client, runtime = any_service
    await _team(client)
    await _rep(client, "alex", "am", capacity_per_day=0)
    lead_id = await _won_account(client, runtime)
    async with runtime.db.transaction() as session:
        # 150 MQLs waiting for an SDR of a territory nobody covers, all older than the account.
        for i in range(150):
            session.add(
                RoutedLead(
                    id=new_id(),
                    profile={},
                    profile_known=True,
                    mql=True,
                    status="waiting_for_rep",
                    updated_at=utcnow() - timedelta(days=1, seconds=i),
                )
            )
        await session.execute(update(Rep).where(Rep.id == "ana").values(active=False))
        await session.execute(update(Rep).where(Rep.id == "alex").values(capacity_per_day=5))
        await RoutingRepository(session).config_changed()
    assert await SlaTimer(runtime.db, 1).tick() == 0  # the first 100 waiting SDR leads
    assert await SlaTimer(runtime.db, 1).tick() == 1  # then the rest, and the account
    assert (await _assignment(client, lead_id))["owners"]["am"] == "alex"


@BOTH
async def test_waiting_leads_are_listed_with_their_reason(any_service: Service) -> None:
    client, runtime = any_service
    await _team(client)
    lead_id = await _won_account(client, runtime)  # waits for an account manager
    r = await client.patch("/v1/reps/ana", json={"out_of_office": True}, headers=MANAGER)
    assert r.status_code == 200
    mql = new_id()
    await deliver(runtime, LeadCaptured(lead_id=mql, email="y@z.io", captured_at=utcnow()))
    await deliver(
        runtime,
        LeadScored(
            lead_id=mql,
            score=80,
            fit=60,
            engagement=20,
            grade="A",
            mql=True,
            became_mql=True,
            rules_version=1,
            scored_at=utcnow(),
        ),
    )
    r = await client.get("/v1/routing/waiting", headers=MANAGER)
    assert r.status_code == 200, r.text
    by_lead = {w["lead_id"]: w for w in r.json()}
    assert set(by_lead) == {lead_id, mql}
    assert by_lead[lead_id]["role"] == "am" and by_lead[lead_id]["status"] == "waiting_for_am"
    assert "no available am" in by_lead[lead_id]["reason"]
    assert by_lead[mql]["role"] == "sdr" and by_lead[mql]["skipped"] == {"ana": "out of office"}
    assert by_lead[mql]["waiting_since"] is not None
    r = await client.get("/v1/routing/waiting?role=am", headers=MANAGER)
    assert [w["lead_id"] for w in r.json()] == [lead_id]
    r = await client.get("/v1/routing/waiting", headers=auth_header("sdr", "ana"))
    assert r.status_code == 403
    # Routed, it leaves the list.
    await _rep(client, "alex", "am")
    r = await client.get("/v1/routing/waiting", headers=MANAGER)
    assert [w["lead_id"] for w in r.json()] == [mql]
