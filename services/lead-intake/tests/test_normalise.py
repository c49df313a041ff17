"""Contract v2: never lose a lead over an optional field; clean data on capture."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from leadflow_intake.normalise import (
    country_code,
    e164,
    email_key,
    employees_of,
    is_role_account,
    normalise,
    registrable_domain,
    title_facts,
)
from leadflow_intake.schemas import LeadIn
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("Germany", "DE"),
        ("germany", "DE"),
        ("GERMANY ", "DE"),
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("Deutschland", "DE"),
        ("United States", "US"),
        ("united states of america", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("US", "US"),
        ("UK", "GB"),
        ("United Kingdom", "GB"),
        ("Côte d'Ivoire", "CI"),
        ("Korea, Republic of", "KR"),
        ("South Korea", "KR"),
        ("the Netherlands", "NL"),
        ("Atlantis", None),
        ("ZZ", None),
    ],
)
def test_country_from_codes_and_names_in_any_case(given: str, code: str | None) -> None:
    assert country_code(given) == code


def test_phone_to_e164_with_the_country_as_region_hint() -> None:
    assert e164("030 1234567", "DE") == "+49301234567"
    assert e164("+49 30 1234567", None) == "+49301234567"
    assert e164("(415) 555-2671", "US") == "+14155552671"
    assert e164("030 1234567", None) is None  # no region to read a national number with
    assert e164("call me maybe", "DE") is None


def test_email_key_folds_case_plus_addressing_and_gmail_dots() -> None:
    assert email_key("Jane.Doe+promo@gmail.com") == "janedoe@gmail.com"
    assert email_key("janedoe@gmail.com") == "janedoe@gmail.com"
    assert email_key("Jane.Doe@GoogleMail.com") == "janedoe@gmail.com"
    # Dots count elsewhere; plus-addressing is folded for every domain.
    assert email_key("Jane.Doe+x@BigCorp.com") == "jane.doe@bigcorp.com"
    assert email_key("+only@x.io") == "+only@x.io"


def test_registrable_domain_from_the_bundled_suffix_list() -> None:
    assert registrable_domain("https://www.shop.bigcorp.co.uk/x?y=1") == "bigcorp.co.uk"
    assert registrable_domain("bigcorp.com") == "bigcorp.com"
    assert registrable_domain("mail.google.com") == "google.com"
    assert registrable_domain("localhost") is None
    assert registrable_domain("not a website") is None


def test_the_suffix_list_never_fetches() -> None:
    """Importing and using the module must not open a socket (no PSL download)."""
    code = (
        "import socket\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('network access')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "socket.getaddrinfo = refuse\n"
        "from leadflow_intake.normalise import registrable_domain\n"
        "assert registrable_domain('https://a.b.example.co.uk') == 'example.co.uk'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_flags_and_title_facts() -> None:
    assert is_role_account("Info@acme.com") and is_role_account("sales+x@acme.com")
    assert not is_role_account("jane@acme.com")
    assert title_facts("VP Engineering") == ("vp", "engineering")
    assert title_facts("Chief Executive Officer") == ("c_level", "executive")
    assert title_facts("CEO & Co-Founder") == ("c_level", "executive")
    assert title_facts("Head of Marketing") == ("director", "marketing")
    assert title_facts("Senior Sales Manager") == ("manager", "sales")
    assert title_facts("Software Engineer") == ("ic", "engineering")
    assert title_facts("Vice President, Finance") == ("vp", "finance")
    assert title_facts("Executive Assistant to the CEO")[0] == "ic"
    assert employees_of("1,000") == 1000 and employees_of("51-200") == 51
    assert employees_of("5000+") == 5000 and employees_of(250) == 250
    assert employees_of("lots") is None and employees_of(-3) is None


def test_normalise_keeps_what_it_cannot_clean_and_warns() -> None:
    clean = normalise(
        LeadIn(
            email="Jane.Doe+promo@Gmail.com",
            country="Atlantis",
            phone="call me maybe",
            employees="lots",
            website="n/a",
        )
    )
    assert clean.email == "jane.doe+promo@gmail.com"
    assert clean.email_key == "janedoe@gmail.com"
    assert clean.country is None and clean.phone == "call me maybe"
    assert clean.unnormalized == {
        "country": "Atlantis",
        "phone": "call me maybe",
        "employees": "lots",
        "website": "n/a",
    }
    assert [w.field for w in clean.warnings] == ["country", "phone", "employees", "website"]


async def test_a_lead_with_messy_optional_fields_is_captured_with_warnings(
    service: Service,
) -> None:
    client, runtime = service
    r = await client.post(
        "/v1/leads",
        json={
            "email": "Jane.Doe@BigCorp.com",
            "country": "Germany",
            "phone": "030 1234567",
            "title": "VP Engineering",
            "employees": "1,000",
        },
        headers=WEB,
    )
    assert r.status_code == 202, r.text
    assert r.json()["warnings"] == []
    (event,) = await outbox_events(runtime, "lead.captured")
    assert event["email"] == "jane.doe@bigcorp.com"
    assert event["country"] == "DE" and event["phone"] == "+49301234567"
    assert event["employees"] == 1000
    assert event["domain"] == "bigcorp.com"
    assert (event["free_mail"], event["disposable"], event["role_account"]) == (
        False,
        False,
        False,
    )
    assert (event["seniority"], event["function"]) == ("vp", "engineering")
    assert event["email_normalized"] == "jane.doe@bigcorp.com"

    r = await client.post(
        "/v1/leads",
        json={"email": "x@mailinator.com", "country": "Atlantis", "phone": "not a phone"},
        headers=WEB,
    )
    assert r.status_code == 202, r.text
    warnings = r.json()["warnings"]
    assert [(w["field"], w["value"]) for w in warnings] == [
        ("country", "Atlantis"),
        ("phone", "not a phone"),
    ]
    lead = (await client.get(f"/v1/leads/{r.json()['lead_id']}", headers=WEB)).json()
    assert lead["country"] is None and lead["phone"] == "not a phone"
    assert lead["unnormalized"] == {"country": "Atlantis", "phone": "not a phone"}
    assert lead["disposable"] is True and lead["domain"] is None

    r = await client.post(
        "/v1/leads", json={"email": "info@gmail.com", "website": "www.acme.co.uk"}, headers=WEB
    )
    lead = (await client.get(f"/v1/leads/{r.json()['lead_id']}", headers=WEB)).json()
    assert (lead["free_mail"], lead["role_account"], lead["domain"]) == (True, True, "acme.co.uk")


async def test_plus_addressing_and_gmail_dots_merge_into_one_lead(service: Service) -> None:
    client, runtime = service
    first = await client.post(
        "/v1/leads", json={"email": "Jane.Doe+promo@gmail.com", "title": "CTO"}, headers=WEB
    )
    second = await client.post(
        "/v1/leads", json={"email": "janedoe@gmail.com", "company": "Acme"}, headers=WEB
    )
    assert first.status_code == 202 and second.status_code == 200
    assert second.json()["status"] == "merged"
    assert second.json()["lead_id"] == first.json()["lead_id"]
    (merged,) = await outbox_events(runtime, "lead.merged")
    assert merged["company"] == "Acme" and merged["title"] == "CTO"
    # An engagement by either spelling finds the lead.
    r = await client.post(
        "/v1/engagements",
        json={"email": "JANE.DOE@googlemail.com", "type": "page_view"},
        headers=WEB,
    )
    assert r.status_code == 202 and r.json()["lead_id"] == first.json()["lead_id"]
