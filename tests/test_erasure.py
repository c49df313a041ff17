"""GDPR erasure announced on privacy.erasure reaches every service that held the lead."""

from __future__ import annotations

from typing import Any

import httpx

from leadflow_launcher.system import System
from tests.helpers import ADMIN, MANAGER, WEB, eventually


async def test_erasure_removes_the_lead_everywhere(system: System, urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={
                "email": "forget.me@bigcorp.com",
                "first_name": "Forget",
                "company": "Privacy Co",
                "title": "Head of Data",
                "country": "GB",
                "employees": 700,
                "industry": "fintech",
            },
        )
        lead_id = r.json()["lead_id"]

        async def scored() -> bool:
            r = await http.get(f"{urls['scoring']}/v1/scores/{lead_id}", headers=MANAGER)
            return r.status_code == 200

        await eventually(scored, what="score before erasure")
        r = await http.delete(f"{urls['lead-intake']}/v1/leads/{lead_id}", headers=ADMIN)
        assert r.status_code == 202

        lead = (await http.get(f"{urls['lead-intake']}/v1/leads/{lead_id}", headers=ADMIN)).json()
        assert lead["erased"] and lead["email"] is None and lead["company"] is None

        async def score_gone() -> bool:
            r = await http.get(f"{urls['scoring']}/v1/scores/{lead_id}", headers=MANAGER)
            return r.status_code == 404

        await eventually(score_gone, what="scoring erased the lead")

        async def profile_gone() -> dict[str, Any] | None:
            r = await http.post(
                f"{urls['routing']}/v1/routing/simulate",
                headers=MANAGER,
                json={"rules": {"rules": [{"id": "all", "role": "sdr"}]}},
            )
            mine = [a for a in r.json()["assignments"] if a["lead_id"] == lead_id]
            return r.json() if not mine else None

        # routing no longer routes on the erased profile (it leaves the replay set).
        await eventually(profile_gone, what="routing erased the profile")
