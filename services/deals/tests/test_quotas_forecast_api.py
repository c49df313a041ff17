from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header

Service = tuple[httpx.AsyncClient, ServiceRuntime]
OpenDeal = Callable[..., Awaitable[str]]
MANAGER = auth_header("manager", "boss")
AE1 = auth_header("ae", "ae-1")


def this_quarter() -> tuple[str, list[str]]:
    today = utcnow().date()
    q = (today.month - 1) // 3 + 1
    months = [f"{today.year}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]
    return f"{today.year}-Q{q}", months


def fields(r: httpx.Response) -> set[str]:
    assert r.status_code == 422, r.text
    return {f["field"] for f in r.json()["fields"]}


# --- quotas -------------------------------------------------------------------------------


async def test_manager_sets_and_replaces_a_quota(service: Service) -> None:
    client, _ = service
    r = await client.put(
        "/v1/quotas/ae-1", json={"period": "2026-q4", "amount": 90000}, headers=MANAGER
    )
    assert r.status_code == 200, r.text
    assert r.json() | {"updated_at": None} == {
        "rep_id": "ae-1",
        "period": "2026-Q4",
        "amount": "90000.00",
        "currency": "USD",
        "updated_at": None,
        "updated_by": "boss",
    }
    again = await client.put(
        "/v1/quotas/ae-1",
        json={"period": "2026-Q4", "amount": "100000", "currency": "usd"},
        headers=MANAGER,
    )
    assert again.json()["amount"] == "100000.00"


async def test_only_managers_set_quotas(service: Service) -> None:
    client, _ = service
    body = {"period": "2026-11", "amount": "1"}
    assert (await client.put("/v1/quotas/ae-1", json=body, headers=AE1)).status_code == 403
    assert (await client.put("/v1/quotas/ae-1", json=body)).status_code == 401
    admin = auth_header("admin", "root")
    assert (await client.put("/v1/quotas/ae-1", json=body, headers=admin)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"period": "2026-13", "amount": "1"}, "period"),
        ({"period": "Q4-2026", "amount": "1"}, "period"),
        ({"period": "2026-H2", "amount": "1"}, "period"),
        ({"amount": "1"}, "period"),
        ({"period": "2026-11", "amount": "-1"}, "amount"),
        ({"period": "2026-11", "amount": "1.001"}, "amount"),
        ({"period": "2026-11", "amount": "1", "currency": "ZZZ"}, "currency"),
    ],
)
async def test_invalid_quota_is_422_naming_the_field(
    service: Service, body: dict[str, str], field: str
) -> None:
    client, _ = service
    assert fields(await client.put("/v1/quotas/ae-1", json=body, headers=MANAGER)) == {field}


async def test_rep_id_with_odd_characters_is_422(service: Service) -> None:
    client, _ = service
    r = await client.put(
        "/v1/quotas/a%20b", json={"period": "2026-11", "amount": "1"}, headers=MANAGER
    )
    assert fields(r) == {"rep_id"}


# --- forecast -----------------------------------------------------------------------------


async def test_forecast_combines_pipeline_wins_and_quotas(
    service: Service, open_deal: OpenDeal
) -> None:
    client, _ = service
    quarter, months = this_quarter()
    # Open: 4000 in negotiation and 1000 in demo, both closing this quarter.
    for stage, amount in (("negotiation", "4000"), ("demo", "1000")):
        deal_id = await open_deal()
        r = await client.patch(
            f"/v1/deals/{deal_id}",
            json={"stage": stage, "amount": amount, "close_date": utcnow().date().isoformat()},
            headers=AE1,
        )
        assert r.status_code == 200, r.text
    # Won 3000, lost one, and another rep's deal that must not count for ae-1.
    won = await open_deal()
    await client.post(
        f"/v1/deals/{won}/close", json={"outcome": "won", "amount": "3000"}, headers=AE1
    )
    lost = await open_deal()
    await client.post(f"/v1/deals/{lost}/close", json={"outcome": "lost"}, headers=AE1)
    other = await open_deal(owner="ae-2")
    await client.post(
        f"/v1/deals/{other}/close", json={"outcome": "won", "amount": "7"}, headers=MANAGER
    )
    await open_deal()  # open, no close date: not in the pipeline
    await client.put("/v1/quotas/ae-1", json={"period": quarter, "amount": "4000"}, headers=MANAGER)
    await client.put(
        "/v1/quotas/ae-1", json={"period": months[0], "amount": "2000"}, headers=MANAGER
    )

    r = await client.get("/v1/forecast", params={"period": quarter}, headers=AE1)
    assert r.status_code == 200, r.text
    f = r.json()
    assert f == {
        "period": quarter,
        "owner": "ae-1",
        "currency": "USD",
        "quota": "6000.00",
        "pipeline": "5000.00",
        "weighted_pipeline": "3250.00",
        "commit": "4000.00",
        "closed_won": "3000.00",
        "attainment": 0.5,
        "win_rate": 0.5,
        "avg_sales_cycle_days": 0.0,
        "deals_open": 2,
        "deals_won": 1,
        "deals_lost": 1,
        "deals_open_undated": 1,
        "deals_other_currency": 0,
    }
    everyone = (
        await client.get("/v1/forecast", params={"period": quarter}, headers=MANAGER)
    ).json()
    assert everyone["owner"] is None and everyone["closed_won"] == "3007.00"
    assert everyone["deals_won"] == 2
    theirs = await client.get(
        "/v1/forecast", params={"period": quarter, "owner": "ae-2"}, headers=MANAGER
    )
    assert theirs.json()["closed_won"] == "7.00" and theirs.json()["quota"] is None
    assert theirs.json()["attainment"] is None


async def test_forecast_in_another_currency_sums_only_that_currency(
    service: Service, open_deal: OpenDeal
) -> None:
    client, _ = service
    quarter, _ = this_quarter()
    deal_id = await open_deal()
    await client.post(
        f"/v1/deals/{deal_id}/close", json={"outcome": "won", "amount": "10"}, headers=AE1
    )
    r = await client.get("/v1/forecast", params={"period": quarter, "currency": "eur"}, headers=AE1)
    assert r.status_code == 200
    assert (r.json()["currency"], r.json()["closed_won"]) == ("EUR", "0.00")
    assert r.json()["deals_won"] == 1 and r.json()["deals_other_currency"] == 1


async def test_ae_forecasts_only_themselves(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/forecast", params={"period": "2026-Q4", "owner": "ae-2"}, headers=AE1)
    assert r.status_code == 403
    mine = await client.get("/v1/forecast", params={"period": "2026-Q4"}, headers=AE1)
    assert mine.status_code == 200 and mine.json()["owner"] == "ae-1"
    sdr = auth_header("sdr", "sdr-1")
    assert (await client.get("/v1/forecast?period=2026-Q4", headers=sdr)).status_code == 403
    assert (await client.get("/v1/forecast?period=2026-Q4")).status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("period=2026-Q5", "period"),
        ("period=2026", "period"),
        ("period=", "period"),
        ("", "period"),
        ("period=2026-Q4&currency=ABC", "currency"),
        ("period=2026-Q4&owner=a%20b", "owner"),
    ],
)
async def test_invalid_forecast_query_is_422_naming_the_field(
    service: Service, query: str, field: str
) -> None:
    client, _ = service
    assert fields(await client.get(f"/v1/forecast?{query}", headers=MANAGER)) == {field}
