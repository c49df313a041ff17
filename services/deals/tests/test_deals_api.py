from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
OpenDeal = Callable[..., Awaitable[str]]
MANAGER = auth_header("manager", "boss")
AE1 = auth_header("ae", "ae-1")
AE2 = auth_header("ae", "ae-2")


def fields(r: httpx.Response) -> set[str]:
    assert r.status_code == 422, r.text
    return {f["field"] for f in r.json()["fields"]}


async def get(client: httpx.AsyncClient, deal_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


# --- reading ------------------------------------------------------------------------------


async def test_ae_lists_only_own_deals_and_manager_lists_everyones(
    service: Service, open_deal: OpenDeal
) -> None:
    client, _ = service
    mine = await open_deal(owner="ae-1")
    theirs = await open_deal(owner="ae-2")
    r = await client.get("/v1/deals", headers=AE1)
    assert [d["deal_id"] for d in r.json()["deals"]] == [mine]
    assert (await client.get("/v1/deals?owner=ae-1", headers=AE1)).status_code == 200
    assert (await client.get("/v1/deals?owner=ae-2", headers=AE1)).status_code == 403
    everyone = await client.get("/v1/deals", headers=MANAGER)
    assert {d["deal_id"] for d in everyone.json()["deals"]} == {mine, theirs}
    one = await client.get("/v1/deals?owner=ae-2", headers=MANAGER)
    assert [d["deal_id"] for d in one.json()["deals"]] == [theirs]


async def test_list_filters_by_stage_and_pages(service: Service, open_deal: OpenDeal) -> None:
    client, _ = service
    ids = [await open_deal() for _ in range(3)]
    await client.patch(f"/v1/deals/{ids[0]}", json={"stage": "demo"}, headers=AE1)
    demo = await client.get("/v1/deals?stage=demo", headers=AE1)
    assert [d["deal_id"] for d in demo.json()["deals"]] == [ids[0]]
    assert demo.json()["deals"][0]["probability"] == 25
    page1 = (await client.get("/v1/deals?limit=2", headers=AE1)).json()
    assert [d["deal_id"] for d in page1["deals"]] == [ids[2], ids[1]]
    assert page1["next_offset"] == 2
    page2 = (await client.get("/v1/deals?limit=2&offset=2", headers=AE1)).json()
    assert [d["deal_id"] for d in page2["deals"]] == [ids[0]]
    assert page2["next_offset"] is None


async def test_list_rejects_unknown_stage_and_bad_paging(service: Service) -> None:
    client, _ = service
    assert fields(await client.get("/v1/deals?stage=won", headers=MANAGER)) == {"stage"}
    assert fields(await client.get("/v1/deals?limit=0", headers=MANAGER)) == {"limit"}
    assert fields(await client.get("/v1/deals?owner=a%20b", headers=MANAGER)) == {"owner"}


async def test_ae_reads_only_own_deal_and_unknown_deal_is_404(
    service: Service, open_deal: OpenDeal
) -> None:
    client, _ = service
    deal_id = await open_deal(owner="ae-1")
    assert (await client.get(f"/v1/deals/{deal_id}", headers=AE1)).status_code == 200
    assert (await client.get(f"/v1/deals/{deal_id}", headers=AE2)).status_code == 403
    assert (await client.get(f"/v1/deals/{deal_id}", headers=MANAGER)).status_code == 200
    admin = auth_header("admin", "root")
    assert (await client.get(f"/v1/deals/{deal_id}", headers=admin)).status_code == 200
    assert (await client.get("/v1/deals/no-such-deal", headers=MANAGER)).status_code == 404


@pytest.mark.parametrize("role", ["sdr", "am", "integration"])
async def test_other_roles_are_forbidden(service: Service, open_deal: OpenDeal, role: str) -> None:
    client, _ = service
    deal_id = await open_deal()
    headers = auth_header(role, "ae-1")  # even with the owner's id as sub
    assert (await client.get("/v1/deals", headers=headers)).status_code == 403
    assert (await client.get(f"/v1/deals/{deal_id}", headers=headers)).status_code == 403
    r = await client.patch(f"/v1/deals/{deal_id}", json={"amount": "1"}, headers=headers)
    assert r.status_code == 403


async def test_missing_or_bad_token_is_401(service: Service, open_deal: OpenDeal) -> None:
    client, _ = service
    deal_id = await open_deal()
    assert (await client.get("/v1/deals")).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert (await client.get(f"/v1/deals/{deal_id}", headers=bad)).status_code == 401
    r = await client.post(f"/v1/deals/{deal_id}/close", json={"outcome": "lost"})
    assert r.status_code == 401


# --- editing ------------------------------------------------------------------------------


async def test_owner_edits_amount_currency_close_date_name_and_notes(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    r = await client.patch(
        f"/v1/deals/{deal_id}",
        json={
            "amount": 1000.5,
            "currency": "eur",
            "close_date": "2026-12-15",
            "name": "Acme expansion",
            "notes": "wants SSO",
        },
        headers=AE1,
    )
    assert r.status_code == 200, r.text
    deal = r.json()
    assert deal["amount"] == "1000.50" and deal["currency"] == "EUR"
    assert deal["close_date"] == "2026-12-15" and deal["name"] == "Acme expansion"
    assert deal["notes"] == "wants SSO" and deal["company"] == "Acme GmbH"
    assert await outbox_events(runtime, "deal.stage_changed") == []
    cleared = await client.patch(
        f"/v1/deals/{deal_id}", json={"amount": None, "close_date": None}, headers=AE1
    )
    assert cleared.json()["amount"] is None and cleared.json()["close_date"] is None
    assert cleared.json()["currency"] == "EUR"  # fields left out stay as they were


async def test_stage_change_is_recorded_and_announced(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    r = await client.patch(f"/v1/deals/{deal_id}", json={"stage": "proposal"}, headers=AE1)
    assert r.status_code == 200
    assert r.json()["stage"] == "proposal" and r.json()["probability"] == 50
    (event,) = await outbox_events(runtime, "deal.stage_changed")
    assert event["deal_id"] == deal_id and event["owner"] == "ae-1"
    assert (event["from_stage"], event["to_stage"], event["probability"]) == (
        "discovery",
        "proposal",
        50,
    )
    back = await client.patch(f"/v1/deals/{deal_id}", json={"stage": "demo"}, headers=MANAGER)
    assert back.status_code == 200
    history = [(h["from_stage"], h["to_stage"], h["by"]) for h in back.json()["stage_history"]]
    assert history[1:] == [("discovery", "proposal", "ae-1"), ("proposal", "demo", "boss")]
    same = await client.patch(f"/v1/deals/{deal_id}", json={"stage": "demo"}, headers=AE1)
    assert same.status_code == 200
    assert len(await outbox_events(runtime, "deal.stage_changed")) == 2


async def test_going_back_two_stages_is_409_and_changes_nothing(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    await client.patch(f"/v1/deals/{deal_id}", json={"stage": "proposal"}, headers=AE1)
    r = await client.patch(
        f"/v1/deals/{deal_id}", json={"stage": "discovery", "amount": "5"}, headers=AE1
    )
    assert r.status_code == 409
    assert "back one stage" in r.json()["detail"]
    deal = await get(client, deal_id)
    assert deal["stage"] == "proposal" and deal["amount"] is None
    assert len(await outbox_events(runtime, "deal.stage_changed")) == 1


@pytest.mark.parametrize("stage", ["closed_won", "closed_lost"])
async def test_closed_stage_by_patch_is_422_pointing_to_close(
    service: Service, open_deal: OpenDeal, stage: str
) -> None:
    client, _ = service
    deal_id = await open_deal()
    r = await client.patch(f"/v1/deals/{deal_id}", json={"stage": stage}, headers=AE1)
    assert fields(r) == {"stage"}
    assert "/close" in r.json()["fields"][0]["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "10.005"}, "amount"),
        ({"amount": "1000000000000.01"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "lots"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"currency": None}, "currency"),
        ({"close_date": "2026-13-01"}, "close_date"),
        ({"stage": "won"}, "stage"),
        ({"stage": None}, "stage"),
        ({"name": "x" * 201}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"owner": "ae-2"}, "owner"),
    ],
)
async def test_invalid_patch_is_422_naming_the_field(
    service: Service, open_deal: OpenDeal, body: dict[str, Any], field: str
) -> None:
    client, _ = service
    deal_id = await open_deal()
    assert fields(await client.patch(f"/v1/deals/{deal_id}", json=body, headers=AE1)) == {field}


async def test_unparseable_body_is_422_not_500(service: Service, open_deal: OpenDeal) -> None:
    client, _ = service
    deal_id = await open_deal()
    r = await client.patch(
        f"/v1/deals/{deal_id}",
        content=b"\xff{",
        headers={**AE1, "content-type": "application/json"},
    )
    assert fields(r) == {"body"}


async def test_ae_cannot_edit_or_close_a_deal_of_another_ae(
    service: Service, open_deal: OpenDeal
) -> None:
    client, _ = service
    deal_id = await open_deal(owner="ae-1")
    r = await client.patch(f"/v1/deals/{deal_id}", json={"amount": "1"}, headers=AE2)
    assert r.status_code == 403
    r = await client.post(f"/v1/deals/{deal_id}/close", json={"outcome": "lost"}, headers=AE2)
    assert r.status_code == 403
    assert (await get(client, deal_id))["stage"] == "discovery"
    r = await client.patch("/v1/deals/unknown", json={"amount": "1"}, headers=AE1)
    assert r.status_code == 404


# --- closing ------------------------------------------------------------------------------


async def test_won_deal_announces_amount_and_company_for_the_hand_off(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal(company="Umbrella")
    await client.patch(f"/v1/deals/{deal_id}", json={"stage": "negotiation"}, headers=AE1)
    r = await client.post(
        f"/v1/deals/{deal_id}/close",
        json={"outcome": "won", "amount": "5000", "reason": "best fit"},
        headers=AE1,
    )
    assert r.status_code == 200, r.text
    deal = r.json()
    assert deal["stage"] == "closed_won" and deal["probability"] == 100
    assert deal["amount"] == "5000.00" and deal["close_reason"] == "best fit"
    assert deal["closed_at"] is not None and deal["close_date"] == deal["closed_at"][:10]
    assert deal["stage_history"][-1]["from_stage"] == "negotiation"
    (won,) = await outbox_events(runtime, "deal.won")
    assert won["deal_id"] == deal_id and won["owner"] == "ae-1"
    assert (won["amount"], won["currency"], won["company"]) == ("5000.00", "USD", "Umbrella")
    # Closing announces deal.won only; deal.stage_changed is for moves between open stages.
    moves = await outbox_events(runtime, "deal.stage_changed")
    assert [e["to_stage"] for e in moves] == ["negotiation"]


async def test_won_deal_may_use_the_amount_already_on_the_deal(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    await client.patch(f"/v1/deals/{deal_id}", json={"amount": "750.25"}, headers=AE1)
    r = await client.post(f"/v1/deals/{deal_id}/close", json={"outcome": "won"}, headers=AE1)
    assert r.status_code == 200
    assert (await outbox_events(runtime, "deal.won"))[0]["amount"] == "750.25"


async def test_win_without_any_amount_is_422_naming_amount_and_leaves_deal_open(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    r = await client.post(f"/v1/deals/{deal_id}/close", json={"outcome": "won"}, headers=AE1)
    assert fields(r) == {"amount"}
    assert (await get(client, deal_id))["stage"] == "discovery"
    assert await outbox_events(runtime, "deal.won") == []


async def test_lost_deal_is_announced_with_its_reason(
    service: Service, open_deal: OpenDeal
) -> None:
    client, runtime = service
    deal_id = await open_deal()
    r = await client.post(
        f"/v1/deals/{deal_id}/close",
        json={"outcome": "lost", "reason": "no budget"},
        headers=MANAGER,
    )
    assert r.status_code == 200 and r.json()["stage"] == "closed_lost"
    assert r.json()["probability"] == 0
    (lost,) = await outbox_events(runtime, "deal.lost")
    assert (lost["deal_id"], lost["reason"], lost["amount"]) == (deal_id, "no budget", None)


async def test_closed_deal_is_immutable(service: Service, open_deal: OpenDeal) -> None:
    client, runtime = service
    deal_id = await open_deal()
    await client.post(f"/v1/deals/{deal_id}/close", json={"outcome": "lost"}, headers=AE1)
    again = await client.post(
        f"/v1/deals/{deal_id}/close", json={"outcome": "won", "amount": "1"}, headers=AE1
    )
    assert again.status_code == 409
    edit = await client.patch(f"/v1/deals/{deal_id}", json={"amount": "9"}, headers=MANAGER)
    assert edit.status_code == 409
    assert (await get(client, deal_id))["amount"] is None
    assert await outbox_events(runtime, "deal.won") == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "draw"}, "outcome"),
        ({}, "outcome"),
        ({"outcome": "won", "amount": "-5"}, "amount"),
        ({"outcome": "lost", "reason": "x" * 5001}, "reason"),
        ({"outcome": "lost", "why": "?"}, "why"),
    ],
)
async def test_invalid_close_is_422_naming_the_field(
    service: Service, open_deal: OpenDeal, body: dict[str, Any], field: str
) -> None:
    client, _ = service
    deal_id = await open_deal()
    r = await client.post(f"/v1/deals/{deal_id}/close", json=body, headers=AE1)
    assert fields(r) == {field}


async def test_openapi_documents_money_as_decimal_strings(service: Service) -> None:
    client, _ = service
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    schemas = r.json()["components"]["schemas"]
    assert schemas["ForecastOut"]["properties"]["pipeline"]["type"] == "string"
    assert {"/v1/deals/{deal_id}/close", "/v1/quotas/{rep_id}", "/v1/forecast"} <= set(
        r.json()["paths"]
    )
