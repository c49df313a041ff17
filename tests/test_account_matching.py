"""Accounts on the real broker: an account list imported by an admin, then a lead from
that account's domain and one from its company name with a legal suffix — ``lead.captured``
on the broker carries each match (how, with what confidence, the owner) for routing, and the
lead's record shows it; a free-mail lead of the same company name matches by name only."""

from __future__ import annotations

import json
import secrets

import httpx

from leadflow_launcher.system import System
from tests.helpers import ADMIN, WEB, eventually, read_topic


async def test_imported_accounts_are_matched_at_capture_and_announced(
    system: System, urls: dict[str, str]
) -> None:
    tag = secrets.token_hex(3)
    domain = f"northwind-{tag}.com"
    csv = (
        f"Account Name;Website;Account Owner\nNorthwind {tag} GmbH;https://www.{domain}/;sdr-ana\n"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{urls['lead-intake']}/v1/accounts/import",
            headers={**ADMIN, "Content-Type": "text/csv"},
            content=csv.encode(),
        )
        assert r.status_code == 200, r.text
        assert r.json()["created"] == 1
        by_domain = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={"email": f"ana.buyer@{domain}", "company": "whatever"},
        )
        by_name = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={"email": f"cto.{tag}@gmail.com", "company": f"Northwind {tag}, Inc."},
        )
        assert by_domain.status_code == 202 and by_name.status_code == 202
        leads = {by_domain.json()["lead_id"]: "domain", by_name.json()["lead_id"]: "name"}
        for lead_id, how in leads.items():
            record = await http.get(f"{urls['lead-intake']}/v1/leads/{lead_id}", headers=ADMIN)
            account = record.json()["account"]
            assert account["match"] == how and account["owner"] == "sdr-ana", account
            assert account["domain"] == domain
            assert 0 < account["confidence"] <= 1

    async def announced() -> dict[str, dict[str, object]] | None:
        found: dict[str, dict[str, object]] = {}
        for m in await read_topic(system.bootstrap_servers, "leads.captured"):
            headers = dict(m.headers)
            if headers.get("ce_type") != b"lead.captured":
                continue
            data = json.loads(m.value or b"{}")
            if data.get("lead_id") in leads:
                found[data["lead_id"]] = data.get("account") or {}
        return found if len(found) == len(leads) else None

    found = await eventually(announced, what="both lead.captured events on the broker")
    for lead_id, how in leads.items():
        assert found[lead_id]["match"] == how
        assert found[lead_id]["owner"] == "sdr-ana"
