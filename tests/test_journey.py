"""A lead travels from a web form to Closed Won with an account manager, across every
service, over the real broker and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import httpx

from leadflow_launcher.system import System
from leadflow_webhooks.testing import Received, Receiver
from tests.helpers import (
    ADMIN,
    MANAGER,
    WEB,
    as_rep,
    data_of,
    eventually,
    headers_of,
    read_topic,
    received_of_type,
)

CE_HEADERS = {
    "ce_specversion",
    "ce_id",
    "ce_source",
    "ce_type",
    "ce_time",
    "ce_subject",
    "content-type",
}


def _verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = headers["webhook-signature"].split()
    return any(hmac.compare_digest(sig, f"v1,{expected}") for sig in offered)


async def test_form_post_to_closed_won_with_account_manager(
    system: System, urls: dict[str, str], receiver: Receiver
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        # A sales tool subscribes to everything.
        r = await http.post(
            f"{urls['webhooks']}/v1/webhooks",
            headers=ADMIN,
            json={"url": receiver.url, "event_types": ["*"], "description": "CRM"},
        )
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]

        # Ops set up a web form; a visitor posts it from the browser.
        r = await http.post(
            f"{urls['lead-intake']}/v1/forms",
            headers=ADMIN,
            json={
                "name": "contact",
                "allowed_origins": ["https://acme.example"],
                "redirect_url": "https://acme.example/thanks",
            },
        )
        form_key = r.json()["form_key"]
        r = await http.post(
            f"{urls['lead-intake']}/v1/forms/{form_key}/submit",
            data={
                "email": "jane.doe@bigcorp.com",
                "first_name": "Jane",
                "last_name": "Doe",
                "company": "BigCorp",
                "title": "VP Engineering",
                "country": "US",
                "employees": "2500",
                "industry": "software",
                "utm_source": "google",
                "utm_campaign": "q4-launch",
                "consent_marketing": "on",
            },
            headers={"Origin": "https://acme.example"},
        )
        assert r.status_code == 303 and r.headers["location"] == "https://acme.example/thanks"
        lead = await http.post(
            f"{urls['lead-intake']}/v1/leads", headers=WEB, json={"email": "Jane.Doe@BigCorp.com"}
        )
        assert lead.status_code == 200 and lead.json()["status"] == "merged"
        lead_id = lead.json()["lead_id"]

        # scoring makes it an MQL and explains why.
        async def score() -> dict[str, Any] | None:
            r = await http.get(f"{urls['scoring']}/v1/scores/{lead_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 and r.json()["mql"] else None

        scored = await eventually(score, what="lead.scored with mql")
        assert sum(f["points"] for f in scored["explanation"]) == scored["score"]

        # routing assigns an NA SDR by the territory rule, with an SLA clock.
        async def assignment(role: str) -> dict[str, Any] | None:
            r = await http.get(f"{urls['routing']}/v1/assignments/{lead_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 and r.json()["owners"][role] else None

        routed = await eventually(lambda: assignment("sdr"), what="SDR assignment")
        sdr = routed["owners"]["sdr"]
        assert sdr in {"sdr-ana", "sdr-ben"}
        assert routed["history"][0]["rule"] == "sdr-na" and routed["sla_due_at"]

        me = as_rep("sdr", sdr)
        queue = (await http.get(f"{urls['routing']}/v1/queue", headers=me)).json()
        assert lead_id in [q["lead_id"] for q in queue]
        r = await http.post(f"{urls['routing']}/v1/leads/{lead_id}/accept", headers=me)
        assert r.status_code == 200, r.text
        r = await http.post(
            f"{urls['routing']}/v1/leads/{lead_id}/qualify",
            headers=me,
            json={
                "framework": "bant",
                "budget": "120k",
                "authority": "VP Eng",
                "need": "lead routing",
                "timeline": "this quarter",
            },
        )
        assert r.status_code == 200, r.text
        ae = r.json()["owners"]["ae"]
        assert ae == "ae-nora"

        # deals opens the AE's deal; the AE moves it to Closed Won.
        ae_headers = as_rep("ae", ae)

        async def deal() -> dict[str, Any] | None:
            r = await http.get(
                f"{urls['deals']}/v1/deals", params={"owner": ae}, headers=ae_headers
            )
            deals = r.json()["deals"] if r.status_code == 200 else []
            found = [d for d in deals if d["lead_id"] == lead_id]
            return found[0] if found else None

        opened = await eventually(deal, what="deal.created")
        deal_id = opened["deal_id"]
        assert opened["stage"] == "discovery"
        for stage in ("demo", "proposal", "negotiation"):
            r = await http.patch(
                f"{urls['deals']}/v1/deals/{deal_id}",
                headers=ae_headers,
                json={"stage": stage, "amount": "48000.00", "currency": "USD"},
            )
            assert r.status_code == 200, r.text
        other_ae = as_rep("ae", "ae-erik")
        r = await http.post(
            f"{urls['deals']}/v1/deals/{deal_id}/close",
            headers=other_ae,
            json={"outcome": "won", "reason": "best fit"},
        )
        assert r.status_code == 403
        r = await http.post(
            f"{urls['deals']}/v1/deals/{deal_id}/close",
            headers=ae_headers,
            json={"outcome": "won", "reason": "best fit"},
        )
        assert r.status_code == 200, r.text

        # routing hands the account to the account manager.
        final = await eventually(lambda: assignment("am"), what="account.assigned")
        assert final["owners"] == {"sdr": sdr, "ae": ae, "am": "am-alex"}
        kinds = [h["kind"] for h in final["history"]]
        assert kinds[:4] == ["assigned", "accepted", "qualified", "assigned"]
        assert all(h["reason"] for h in final["history"])

        # The sales tool received every step, signed per Standard Webhooks.
        for event_type in (
            "lead.captured",
            "lead.scored",
            "lead.assigned",
            "lead.accepted",
            "lead.qualified",
            "deal.created",
            "deal.stage_changed",
            "deal.won",
            "account.assigned",
        ):

            async def delivered(t: str = event_type) -> list[Received]:
                return received_of_type(receiver, t, lead_id)

            got = await eventually(delivered, what=f"webhook {event_type}")
            assert _verify_standard_webhook(secret, got[0].headers, got[0].body)

        # Ops see the journey in the funnel.
        async def funnel() -> dict[str, Any] | None:
            r = await http.get(f"{urls['console']}/v1/funnel", headers=MANAGER)
            body: dict[str, Any] = r.json()
            return body if r.status_code == 200 and body["counts"]["won"] >= 1 else None

        report = await eventually(funnel, what="funnel shows the won lead")
        assert report["speed_to_lead"]["median_seconds"] is not None

        # ...and the topics: every consumer group caught up on leads.captured.
        async def caught_up() -> dict[str, Any] | None:
            r = await http.get(f"{urls['console']}/v1/topics", headers=MANAGER)
            if r.status_code != 200:
                return None
            (captured,) = [t for t in r.json()["topics"] if t["topic"] == "leads.captured"]
            lags = {g["group"]: g["lag"] for g in captured["groups"]}
            wanted = {"scoring", "routing", "webhooks", "console"}
            ok = wanted <= set(lags) and all(lags[g] == 0 for g in wanted)
            return captured if ok and captured["messages"] > 0 else None

        await eventually(caught_up, what="consumer groups caught up on leads.captured")

    # Every message on the journey's topics carries the CloudEvents headers and lead key.
    for topic in (
        "leads.captured",
        "leads.scored",
        "leads.routing",
        "leads.qualification",
        "deals.lifecycle",
    ):
        messages = [
            m
            for m in await read_topic(system.bootstrap_servers, topic)
            if data_of(m).get("lead_id") == lead_id
        ]
        assert messages, topic
        for message in messages:
            headers = headers_of(message)
            assert CE_HEADERS <= set(headers), (topic, headers)
            assert headers["ce_specversion"] == "1.0"
            assert headers["content-type"] == "application/json"
            assert message.key == lead_id.encode()
            assert "traceparent" in headers
