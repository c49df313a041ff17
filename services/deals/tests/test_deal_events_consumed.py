"""deals' handlers, run as the consumer runs them (idempotently, one transaction each)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from leadflow_deals.main import create_app
from leadflow_deals.settings import DealsSettings
from leadflow_shared.events import EventData, LeadAssigned, LeadErased, LeadReassigned
from leadflow_shared.ids import new_id
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import (
    auth_header,
    deliver,
    deliver_batch,
    outbox_events,
    running_service,
)

Service = tuple[httpx.AsyncClient, ServiceRuntime]
OpenDeal = Callable[..., Awaitable[str]]

MANAGER = auth_header("manager", "boss")


def assigned(
    lead_id: str, owner: str, role: str = "ae", company: str | None = "Acme"
) -> LeadAssigned:
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "role": role,
            "owner": owner,
            "rule": "r1",
            "strategy": "round_robin",
            "reason": "territory",
            "company": company,
        }
    )


def reassigned(lead_id: str, owner: str, role: str = "ae") -> LeadReassigned:
    return LeadReassigned.model_validate(
        {
            "lead_id": lead_id,
            "role": role,
            "previous_owner": None,
            "owner": owner,
            "reason": "out of office",
        }
    )


async def deals_of(client: httpx.AsyncClient, owner: str | None = None) -> list[dict[str, object]]:
    params = {"owner": owner} if owner else {}
    r = await client.get("/v1/deals", params=params, headers=MANAGER)
    assert r.status_code == 200, r.text
    deals: list[dict[str, object]] = r.json()["deals"]
    return deals


async def test_ae_assignment_opens_a_discovery_deal_and_announces_it(service: Service) -> None:
    client, runtime = service
    lead_id = new_id()
    assert await deliver(runtime, assigned(lead_id, "ae-7", company="Globex"))
    (created,) = await outbox_events(runtime, "deal.created")
    assert created["lead_id"] == lead_id and created["owner"] == "ae-7"
    assert created["stage"] == "discovery" and created["probability"] == 10
    assert created["currency"] == "USD" and created["amount"] is None
    assert created["company"] == "Globex"
    r = await client.get(f"/v1/deals/{created['deal_id']}", headers=MANAGER)
    deal = r.json()
    assert (deal["name"], deal["company"], deal["owner"]) == ("Globex", "Globex", "ae-7")
    assert deal["stage_history"] == [
        {
            "from_stage": None,
            "to_stage": "discovery",
            "at": deal["created_at"],
            "by": "leadflow/test",
        }
    ]


async def test_new_deals_use_the_configured_default_currency(tmp_path: Path) -> None:
    async with running_service(create_app, DealsSettings, tmp_path, default_currency="eur") as (
        _,
        runtime,
    ):
        await deliver(runtime, assigned(new_id(), "ae-1"))
        (created,) = await outbox_events(runtime, "deal.created")
        assert created["currency"] == "EUR"


async def test_sdr_assignment_opens_no_deal(service: Service) -> None:
    client, runtime = service
    assert await deliver(runtime, assigned(new_id(), "sdr-1", role="sdr"))
    assert await outbox_events(runtime, "deal.created") == []
    assert await deals_of(client) == []


async def test_redelivered_assignment_has_no_second_effect(service: Service) -> None:
    client, runtime = service
    event = assigned(new_id(), "ae-1")
    assert await deliver(runtime, event, event_id="evt-1") is True
    assert await deliver(runtime, event, event_id="evt-1") is False
    assert len(await outbox_events(runtime, "deal.created")) == 1
    assert len(await deals_of(client)) == 1


async def test_second_ae_assignment_of_a_lead_with_an_open_deal_opens_no_other(
    service: Service,
) -> None:
    client, runtime = service
    lead_id = new_id()
    await deliver(runtime, assigned(lead_id, "ae-1"))
    await deliver(runtime, assigned(lead_id, "ae-1"))
    assert len(await outbox_events(runtime, "deal.created")) == 1
    assert len(await deals_of(client)) == 1


async def test_lead_with_only_a_closed_deal_gets_a_new_deal_on_ae_assignment(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    lead_id = (await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)).json()["lead_id"]
    closed = await client.post(
        f"/v1/deals/{deal_id}/close", json={"outcome": "lost"}, headers=MANAGER
    )
    assert closed.status_code == 200
    await deliver(runtime, assigned(lead_id, "ae-2"))
    assert len(await outbox_events(runtime, "deal.created")) == 2
    assert {d["owner"] for d in await deals_of(client)} == {"ae-1", "ae-2"}


async def test_ae_reassignment_moves_the_open_deal_and_records_it(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal(owner="ae-1")
    lead_id = (await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)).json()["lead_id"]
    await deliver(runtime, reassigned(lead_id, "sdr-9", role="sdr"))  # not an AE: ignored
    await deliver(runtime, reassigned(lead_id, "ae-2"))
    deal = (await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)).json()
    assert deal["owner"] == "ae-2"
    (change,) = deal["owner_history"]
    assert (change["from_owner"], change["to_owner"]) == ("ae-1", "ae-2")
    assert change["reason"] == "out of office" and change["by"] == "leadflow/test"
    assert (await client.get(f"/v1/deals/{deal_id}", headers=auth_header("ae", "ae-2"))).is_success
    ae1 = await client.get(f"/v1/deals/{deal_id}", headers=auth_header("ae", "ae-1"))
    assert ae1.status_code == 403


async def test_reassignment_of_a_lead_without_deal_changes_nothing(service: Service) -> None:
    client, runtime = service
    assert await deliver(runtime, reassigned(new_id(), "ae-2"))
    assert await deals_of(client) == []


async def _erase(runtime: ServiceRuntime, lead_id: str) -> bool:
    return await deliver(runtime, LeadErased(lead_id=lead_id, erased_at=datetime.now(UTC)))


async def test_erasure_nulls_personal_data_and_keeps_amounts_and_stages(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal(company="Initech")
    lead_id = (await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)).json()["lead_id"]
    await client.patch(
        f"/v1/deals/{deal_id}",
        json={"amount": "1200.50", "stage": "demo", "notes": "CFO Jane is keen"},
        headers=MANAGER,
    )
    await client.post(
        f"/v1/deals/{deal_id}/close",
        json={"outcome": "lost", "reason": "Jane left Initech"},
        headers=MANAGER,
    )
    other = await open_deal(company="Hooli")
    assert await _erase(runtime, lead_id)
    deal = (await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)).json()
    assert deal["erased"] is True
    assert (deal["name"], deal["company"], deal["notes"], deal["close_reason"]) == (
        None,
        None,
        None,
        None,
    )
    assert (deal["amount"], deal["stage"]) == ("1200.50", "closed_lost")
    assert [h["to_stage"] for h in deal["stage_history"]] == ["discovery", "demo", "closed_lost"]
    untouched = (await client.get(f"/v1/deals/{other}", headers=MANAGER)).json()
    assert untouched["company"] == "Hooli" and untouched["erased"] is False


async def test_assignment_arriving_after_erasure_opens_a_deal_without_the_company(
    service: Service,
) -> None:
    client, runtime = service
    lead_id = new_id()
    assert await _erase(runtime, lead_id)
    await deliver(runtime, assigned(lead_id, "ae-1", company="Initech"))
    (created,) = await outbox_events(runtime, "deal.created")
    assert created["company"] is None
    (deal,) = await deals_of(client)
    assert deal["company"] is None and deal["name"] is None and deal["erased"] is True


async def test_redelivered_erasure_is_harmless(service: Service) -> None:
    _, runtime = service
    event = LeadErased(lead_id=new_id(), erased_at=datetime.now(UTC))
    assert await deliver(runtime, event, event_id="erase-1") is True
    assert await deliver(runtime, event, event_id="erase-1") is False


async def test_batch_opens_moves_and_erases_in_event_order(service: Service) -> None:
    client, runtime = service
    moved, erased, sdr_only = new_id(), new_id(), new_id()
    batch: list[EventData] = [
        assigned(moved, "ae-1"),
        assigned(sdr_only, "sdr-1", role="sdr"),
        assigned(moved, "ae-2"),
        LeadErased(lead_id=erased, erased_at=datetime.now(UTC)),
        assigned(erased, "ae-3", company="Initech"),
    ]
    assert await deliver_batch(runtime, batch) == [True] * 5
    created = {e["lead_id"]: e for e in await outbox_events(runtime, "deal.created")}
    assert set(created) == {moved, erased}
    assert created[erased]["company"] is None
    deal = (await client.get(f"/v1/deals/{created[moved]['deal_id']}", headers=MANAGER)).json()
    assert deal["owner"] == "ae-2"
    assert [(c["from_owner"], c["to_owner"], c["reason"]) for c in deal["owner_history"]] == [
        ("ae-1", "ae-2", "assigned again")
    ]


async def test_redelivered_batch_has_no_second_effect(service: Service) -> None:
    client, runtime = service
    lead_id = new_id()
    batch: list[EventData] = [assigned(lead_id, "ae-1"), reassigned(lead_id, "ae-2")]
    ids: list[str | None] = ["evt-a", "evt-b"]
    assert await deliver_batch(runtime, batch, event_ids=ids) == [True, True]
    assert await deliver_batch(runtime, batch, event_ids=ids) == [False, False]
    (deal,) = await deals_of(client)
    assert deal["owner"] == "ae-2"
    assert len(await outbox_events(runtime, "deal.created")) == 1
    full = (await client.get(f"/v1/deals/{deal['deal_id']}", headers=MANAGER)).json()
    assert len(full["owner_history"]) == 1 and len(full["stage_history"]) == 1
