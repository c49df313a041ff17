"""The SDR's qualification (lead.qualified: framework, fields, notes) reaches the lead's
deal, whichever of the two topics arrives first; a newer qualification replaces an older
one, never the reverse; erasure deletes it and a late one cannot bring it back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from leadflow_shared.events import LeadAssigned, LeadErased, LeadQualified
from leadflow_shared.ids import new_id
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "boss")
T0 = datetime(2026, 12, 1, 10, tzinfo=UTC)


def _assigned(lead_id: str) -> LeadAssigned:
    return LeadAssigned.model_validate(
        {
            "lead_id": lead_id,
            "role": "ae",
            "owner": "ae-nora",
            "rule": "r1",
            "strategy": "round_robin",
            "reason": "territory",
            "company": "Acme",
        }
    )


def _qualified(lead_id: str, at: datetime, budget: str, notes: str | None) -> LeadQualified:
    return LeadQualified(
        lead_id=lead_id,
        owner="sdr-ana",
        framework="bant",
        fields={"budget": budget, "authority": "VP", "need": "routing", "timeline": "Q1"},
        notes=notes,
        qualified_at=at,
    )


async def _deal(client: httpx.AsyncClient, lead_id: str) -> dict[str, Any]:
    r = await client.get("/v1/deals", headers=MANAGER)
    assert r.status_code == 200, r.text
    (summary,) = [d for d in r.json()["deals"] if d["lead_id"] == lead_id]
    detail = await client.get(f"/v1/deals/{summary['deal_id']}", headers=MANAGER)
    assert detail.status_code == 200, detail.text
    result: dict[str, Any] = detail.json()
    return result


async def test_qualification_reaches_the_deal_in_either_order(service: Service) -> None:
    client, runtime = service
    before, after = new_id(), new_id()
    # Qualified first, deal opened later (different topics: no order between them).
    await deliver(runtime, _qualified(before, T0, "50k", "met at the summit"))
    await deliver(runtime, _assigned(before))
    # Deal first, qualification later.
    await deliver(runtime, _assigned(after))
    assert (await _deal(client, after))["qualification"] is None
    await deliver(runtime, _qualified(after, T0, "20k", None))

    first = (await _deal(client, before))["qualification"]
    assert first["framework"] == "bant" and first["qualified_by"] == "sdr-ana"
    assert first["fields"]["budget"] == "50k" and first["notes"] == "met at the summit"
    second = (await _deal(client, after))["qualification"]
    assert second["fields"]["budget"] == "20k" and second["notes"] is None


async def test_the_newest_qualification_wins_and_erasure_deletes_it(service: Service) -> None:
    client, runtime = service
    lead_id = new_id()
    await deliver(runtime, _assigned(lead_id))
    await deliver(runtime, _qualified(lead_id, T0 + timedelta(hours=1), "90k", "second call"))
    await deliver(runtime, _qualified(lead_id, T0, "10k", "first call"))  # older, late
    qualification = (await _deal(client, lead_id))["qualification"]
    assert qualification["fields"]["budget"] == "90k" and qualification["notes"] == "second call"

    await deliver(runtime, LeadErased(lead_id=lead_id, erased_at=T0 + timedelta(days=1)))
    assert (await _deal(client, lead_id))["qualification"] is None
    await deliver(runtime, _qualified(lead_id, T0 + timedelta(days=2), "1M", "after erasure"))
    assert (await _deal(client, lead_id))["qualification"] is None
