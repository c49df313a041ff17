"""No personal data or secrets in any service's log.

A journey with distinctive personal data (web form, JSON API and CSV import; scoring,
routing, SDR accept and qualify, the AE's deal to Closed Won, erasure), a webhook
subscription whose signing secret is used for every delivery (one answered 500 so retries
are logged), and requests with valid, forged and expired bearer tokens. Then every log file
under the system's ``logs/`` is read and none of those values may appear: as sent, lower-cased
or URL-encoded.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest

from leadflow_launcher.system import System
from leadflow_shared.auth import mint_token
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_webhooks.testing import Received, Receiver
from tests.helpers import ADMIN, MANAGER, WEB, as_rep, eventually, received_of_type

FIT = {
    "company": "BigCorp",
    "title": "VP Engineering",
    "country": "US",
    "employees": 2500,
    "industry": "software",
}


def _letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))


def _person(label: str) -> dict[str, str]:
    """Values no log line could contain by chance."""
    tag = _letters(6)
    first = f"Quorinda{label}{tag}".title()
    last = f"Vantasseldorf{_letters(5)}".title()
    digits = "".join(secrets.choice(string.digits) for _ in range(7))
    return {
        "email": f"{first}.{last}@{_letters(8)}-privacy.com",
        "first_name": first,
        "last_name": last,
        "phone": f"+1 (415) {digits[:3]}-{digits[3:]}",
    }


def _forms_of(value: str) -> set[str]:
    """The value as sent, lower-cased and URL-encoded (both ways), and those lower-cased."""
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    return forms | {f.lower() for f in forms}


def _needles(people: list[dict[str, str]], tokens: list[str], secret: str) -> dict[str, str]:
    """Each forbidden string → what it is (for the failure message)."""
    needles: dict[str, str] = {}
    for n, person in enumerate(people):
        for field, value in person.items():
            for form in _forms_of(value):
                needles[form] = f"person {n} {field}"
        # A phone as digits only, as a normaliser might log it.
        needles["".join(c for c in person["phone"] if c.isdigit())] = f"person {n} phone digits"
        needles[person["email"].split("@")[0].lower()] = f"person {n} email local part"
    for n, token in enumerate(tokens):
        for form in _forms_of(token):
            needles[form] = f"token {n}"
        # The signature alone identifies a token as well as the whole of it.
        needles[token.rsplit(".", 1)[-1]] = f"token {n} signature"
    key = secret.removeprefix("whsec_")
    for form in _forms_of(secret) | _forms_of(key):
        needles[form] = "webhook secret"
    return needles


@pytest.fixture
async def hook(urls: dict[str, str], receiver: Receiver) -> AsyncIterator[dict[str, Any]]:
    """A subscription to everything, deactivated afterwards: later tests verify what the
    receiver gets with their own subscription's secret."""
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{urls['webhooks']}/v1/webhooks",
            headers=ADMIN,
            json={"url": receiver.url, "event_types": ["*"], "description": "privacy"},
        )
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        yield created
        r = await http.delete(f"{urls['webhooks']}/v1/webhooks/{created['id']}", headers=ADMIN)
        assert r.status_code == 204, r.text


async def test_no_personal_data_or_secret_in_any_log(
    system: System, urls: dict[str, str], receiver: Receiver, hook: dict[str, Any]
) -> None:
    json_person, form_person, csv_person = _person("J"), _person("F"), _person("C")
    # Tokens this test sends: valid ones, a forged one and an expired one.
    sdr_tokens: dict[str, str] = {}
    forged = mint_token("x" * 40, sub="intruder", role="admin")
    expired = mint_token(DEV_JWT_SECRET, sub="late", role="admin", ttl=timedelta(seconds=-60))
    garbage = f"not-a-jwt-{_letters(24)}"
    admin = mint_token(DEV_JWT_SECRET, sub="privacy-admin", role="admin")
    admin_headers = {"Authorization": f"Bearer {admin}"}

    async with httpx.AsyncClient(timeout=10) as http:
        secret = hook["secret"]
        receiver.statuses.append(500)  # one failed attempt: the retry path logs too

        # Forged, expired and malformed tokens are refused (and must not be logged).
        for bad in (forged, expired, garbage):
            r = await http.get(
                f"{urls['webhooks']}/v1/webhooks", headers={"Authorization": f"Bearer {bad}"}
            )
            assert r.status_code == 401, r.text

        # Three ways in: JSON API, a browser form, a CSV import.
        r = await http.post(
            f"{urls['lead-intake']}/v1/leads", headers=WEB, json={**json_person, **FIT}
        )
        assert r.status_code == 202, r.text
        lead_id: str = r.json()["lead_id"]
        r = await http.post(
            f"{urls['lead-intake']}/v1/forms",
            headers=admin_headers,
            json={
                "name": "privacy",
                "allowed_origins": ["https://privacy.example"],
                "redirect_url": "https://privacy.example/thanks",
            },
        )
        assert r.status_code == 201, r.text
        form_key = r.json()["form_key"]
        r = await http.post(
            f"{urls['lead-intake']}/v1/forms/{form_key}/submit",
            data={**form_person, **{k: str(v) for k, v in FIT.items()}},
            headers={"Origin": "https://privacy.example", "Accept": "application/json"},
        )
        assert r.status_code == 202, r.text
        form_lead = r.json()["lead_id"]
        header = "email,first_name,last_name,phone,company,country"
        row = ",".join(csv_person[k] for k in ("email", "first_name", "last_name", "phone"))
        r = await http.post(
            f"{urls['lead-intake']}/v1/leads/import",
            headers={**WEB, "content-type": "text/csv"},
            # The second row is rejected (its email has two @): an unknown country alone
            # would no longer reject it (contract v2 keeps it as given).
            content=f"{header}\n{row},BigCorp,US\n{csv_person['email']}@x,bad,row,nope,X,ZZ\n",
        )
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1 and r.json()["rejected"]

        # Invalid input carrying personal data, and personal data in a path.
        r = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={**json_person, "email": json_person["first_name"], "country": "XX"},
        )
        assert r.status_code == 422
        r = await http.get(
            f"{urls['lead-intake']}/v1/leads/{quote(json_person['email'])}", headers=WEB
        )
        assert r.status_code in (404, 422)
        r = await http.get(f"{urls['lead-intake']}/v1/leads/{lead_id}", headers=WEB)
        assert r.status_code == 200
        assert r.json()["email"].lower() == json_person["email"].lower()

        # scoring → routing → the SDR accepts and qualifies → the AE's deal → Closed Won.
        async def assignment(role: str) -> dict[str, Any] | None:
            r = await http.get(f"{urls['routing']}/v1/assignments/{lead_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 and r.json()["owners"][role] else None

        sdr = (await eventually(lambda: assignment("sdr"), what="SDR assignment"))["owners"]["sdr"]
        me = as_rep("sdr", sdr)
        sdr_tokens["sdr"] = me["Authorization"].removeprefix("Bearer ")
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
        ae_headers = as_rep("ae", ae)
        sdr_tokens["ae"] = ae_headers["Authorization"].removeprefix("Bearer ")

        async def deal() -> dict[str, Any] | None:
            r = await http.get(
                f"{urls['deals']}/v1/deals", params={"owner": ae}, headers=ae_headers
            )
            deals = r.json()["deals"] if r.status_code == 200 else []
            found = [d for d in deals if d["lead_id"] == lead_id]
            return found[0] if found else None

        deal_id = (await eventually(deal, what="deal.created"))["deal_id"]
        r = await http.patch(
            f"{urls['deals']}/v1/deals/{deal_id}",
            headers=ae_headers,
            json={"stage": "negotiation", "amount": "12000.00", "currency": "USD"},
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            f"{urls['deals']}/v1/deals/{deal_id}/close",
            headers=ae_headers,
            json={"outcome": "won", "reason": "fit"},
        )
        assert r.status_code == 200, r.text
        await eventually(lambda: assignment("am"), what="account.assigned")

        # The sales tool got the journey, signed with the secret (so the signer read it).
        for event_type in ("lead.captured", "deal.won", "account.assigned"):

            async def delivered(t: str = event_type) -> list[Received]:
                return received_of_type(receiver, t, lead_id)

            await eventually(delivered, what=f"webhook {event_type}")

        async def form_lead_delivered() -> list[Received]:
            return received_of_type(receiver, "lead.captured", form_lead)

        await eventually(form_lead_delivered, what="the form lead's webhook")
        # Erasure of the form lead (its webhook bodies are dropped; nothing is logged).
        r = await http.delete(f"{urls['lead-intake']}/v1/leads/{form_lead}", headers=ADMIN)
        assert r.status_code == 202, r.text

    tokens = [forged, expired, garbage, admin, *sdr_tokens.values()]
    for used in (ADMIN, MANAGER, WEB):
        tokens.append(used["Authorization"].removeprefix("Bearer "))
    needles = _needles([json_person, form_person, csv_person], tokens, secret)

    logs = sorted((system.data_dir / "logs").glob("*.log"))
    assert {p.stem for p in logs} >= {"lead-intake", "scoring", "routing", "deals", "webhooks"}
    texts = {p.name: p.read_text(errors="replace") for p in logs}
    # The scan reads live logs: ids of this journey are there (ids are not personal data).
    assert any(lead_id in text for text in texts.values()), "the journey left no log line"
    assert any('"webhook attempt"' in text for text in texts.values())
    found = sorted(
        {
            f"{name}: {what}"
            for name, text in texts.items()
            for needle, what in needles.items()
            if needle in text
        }
    )
    assert not found, f"personal data or secrets in logs: {found}"
