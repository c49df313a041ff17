"""Anonymous touches on the real broker: a webinar attendee list is uploaded before the
person fills in the form; the touch is kept, attaches when the lead is captured, and the
lead's score counts it."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from leadflow_launcher.system import System
from tests.helpers import MANAGER, WEB, eventually


async def test_a_webinar_list_before_the_form_fill_counts_in_the_score(
    system: System, urls: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    intake, scoring = urls["lead-intake"], urls["scoring"]
    async with httpx.AsyncClient(timeout=10) as http:
        batch = await http.post(
            f"{intake}/v1/engagements",
            headers=WEB,
            json={
                "events": [
                    {"email": f"Ada.Webinar{tag}@Example.org", "type": "webinar_attended"},
                    {"email": f"ada.webinar{tag}@example.org", "type": "content_download"},
                    {"email": f"other{tag}@example.org", "type": "no_such_type"},
                ]
            },
        )
        assert batch.status_code == 200, batch.text
        body = batch.json()
        assert (body["accepted"], body["pending"], body["rejected"]) == (0, 2, 1)

        lead = await http.post(
            f"{intake}/v1/leads",
            headers=WEB,
            json={"email": f"ada.webinar{tag}+form@example.org", "company": "Example"},
        )
        assert lead.status_code == 202, lead.text
        lead_id = lead.json()["lead_id"]

        async def scored_with_touches() -> dict[str, Any] | None:
            r = await http.get(f"{scoring}/v1/scores/{lead_id}", headers=MANAGER)
            if r.status_code != 200:
                return None
            score = r.json()
            return score if score["engagement"] > 0 else None

        score = await eventually(scored_with_touches, what="the score counting the webinar")
        factors = " ".join(f["factor"] for f in score["explanation"])
        assert "webinar" in factors, score["explanation"]
