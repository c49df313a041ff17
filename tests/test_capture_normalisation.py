"""Contract v2 on the real broker: a lead with a country name, a national phone and a
plus-addressed email is normalised, scored and routed by its ISO country; a lead whose
country nobody knows is still captured and scored (no dead letter downstream)."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from leadflow_launcher.system import System
from tests.helpers import MANAGER, WEB, eventually

FIT = {
    "company": "BigCorp",
    "title": "VP Engineering",
    "employees": "2,500",
    "industry": "software",
}


async def test_messy_lead_is_normalised_scored_and_routed(
    system: System, urls: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    async with httpx.AsyncClient(timeout=10) as http:
        first = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={
                "email": f"Greta.Berg{tag}+webinar@Gmail.com",
                "country": "germany",
                "phone": "030 1234567",
                "website": "https://www.bigcorp-gmbh.de/kontakt",
                **FIT,
            },
        )
        assert first.status_code == 202, first.text
        assert first.json()["warnings"] == []
        lead_id = first.json()["lead_id"]
        again = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={"email": f"gretaberg{tag}@googlemail.com", "last_name": "Berg"},
        )
        assert again.status_code == 200 and again.json()["lead_id"] == lead_id

        lead = (await http.get(f"{urls['lead-intake']}/v1/leads/{lead_id}", headers=WEB)).json()
        assert (lead["country"], lead["phone"], lead["employees"]) == ("DE", "+49301234567", 2500)
        assert (lead["domain"], lead["free_mail"], lead["seniority"]) == (
            "bigcorp-gmbh.de",
            True,
            "vp",
        )

        async def routed() -> dict[str, Any] | None:
            r = await http.get(f"{urls['routing']}/v1/assignments/{lead_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 and r.json()["owners"]["sdr"] else None

        assignment = await eventually(routed, what="SDR assignment by the EMEA rule")
        assert assignment["history"][0]["rule"] == "sdr-emea"

        unknown = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={"email": f"nemo{tag}@atlantis-corp.com", "country": "Atlantis", **FIT},
        )
        assert unknown.status_code == 202, unknown.text
        assert [w["field"] for w in unknown.json()["warnings"]] == ["country"]
        unknown_id = unknown.json()["lead_id"]

        async def scored() -> dict[str, Any] | None:
            r = await http.get(f"{urls['scoring']}/v1/scores/{unknown_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 else None

        await eventually(scored, what="the lead with an unknown country scored")
