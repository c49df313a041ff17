"""One trace id follows a lead from the HTTP request through every service's events."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from leadflow_launcher.system import System
from tests.helpers import MANAGER, WEB, data_of, eventually, headers_of, read_topic


async def test_traceparent_of_the_request_reaches_the_assignment_event(
    system: System, urls: dict[str, str]
) -> None:
    trace_id = secrets.token_hex(16)
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers={**WEB, "traceparent": traceparent},
            json={
                "email": "traced@bigcorp.com",
                "company": "BigCorp",
                "title": "CTO",
                "country": "US",
                "employees": 900,
                "industry": "saas",
            },
        )
        assert r.status_code == 202
        assert r.headers["traceparent"].split("-")[1] == trace_id
        lead_id = r.json()["lead_id"]

        async def assigned() -> dict[str, Any] | None:
            r = await http.get(f"{urls['routing']}/v1/assignments/{lead_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 and r.json()["owners"]["sdr"] else None

        await eventually(assigned, what="assignment")

    for topic, event_type in (
        ("leads.captured", "lead.captured"),
        ("leads.scored", "lead.scored"),
        ("leads.routing", "lead.assigned"),
    ):
        messages = [
            m
            for m in await read_topic(system.bootstrap_servers, topic)
            if data_of(m).get("lead_id") == lead_id and headers_of(m)["ce_type"] == event_type
        ]
        assert messages, event_type
        assert headers_of(messages[0])["traceparent"].split("-")[1] == trace_id, event_type
