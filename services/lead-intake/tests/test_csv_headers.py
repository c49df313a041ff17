"""CSV imports as marketing ops export them: header synonyms in any case and spacing,
``,`` ``;`` or tab, UTF-8 with or without BOM, messy values normalised, per-row errors."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from leadflow_intake.csv_columns import lead_field_of
from leadflow_intake.csv_stream import CsvReader, sniff_delimiter
from leadflow_intake.models import Lead
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")
CSV = {**WEB, "content-type": "text/csv"}


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Email", "email"),
        ("E-mail", "email"),
        ("E-Mail", "email"),
        ("EMAIL ADDRESS", "email"),
        ("  Email Address: ", "email"),
        ("EmailAddress", "email"),
        ("email_address", "email"),
        ("First Name", "first_name"),
        ("first_name", "first_name"),
        ("FirstName", "first_name"),
        ("Last Name", "last_name"),
        ("Company Name", "company"),
        ("Company", "company"),
        ("Country/Region", "country"),
        ("Country / Region", "country"),
        ("Phone #", "phone"),
        ("Job Title", "title"),
        ("No. of Employees", "employees"),
        ("UTM Source", "utm_source"),
        ("Lead Source", "source"),
        ("Favourite colour", "Favourite colour"),
    ],
)
def test_header_synonyms_case_spacing_and_punctuation(header: str, field: str) -> None:
    assert lead_field_of(header) == field


def test_the_delimiter_is_the_one_the_header_uses() -> None:
    assert sniff_delimiter("Email,First Name,Company,Country") == ","
    assert sniff_delimiter("Email;First Name;Company;Country") == ";"
    assert sniff_delimiter("Email\tFirst Name\tCompany") == "\t"
    assert sniff_delimiter('"Company; Inc",Email') == ","  # quoted text does not count
    assert sniff_delimiter("Email") == ","


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_bom_and_delimiters(bom: bytes, delimiter: str) -> None:
    lines = [["E-mail", "First Name", "Company Name"], ["a@x.io", "Ann", "Acme"]]
    data = bom + "\r\n".join(delimiter.join(cells) for cells in lines).encode()
    reader = CsvReader()
    rows = reader.feed(data) + reader.feed(b"", final=True)
    assert rows == [(2, {"email": "a@x.io", "first_name": "Ann", "company": "Acme"})]


async def test_a_crm_export_imports(service: Service) -> None:
    """The export from the issue: ``Email,First Name,Company,Country`` with country names."""
    client, runtime = service
    csv_text = (
        "Email,First Name,Company,Country\n"
        "jane.doe@bigcorp.com,Jane,BigCorp,Germany\n"
        "JOHN@acme.co.uk,John,Acme,United Kingdom\n"
        "li@example.cn,Li,Example,china\n"
    )
    r = await client.post("/v1/leads/import", content=csv_text, headers=CSV)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["merged"], r.json()["rejected"]) == (3, 0, [])
    async with runtime.db.sessions() as session:
        leads = {lead.email: lead for lead in (await session.scalars(select(Lead))).all()}
    assert leads["jane.doe@bigcorp.com"].country == "DE"
    assert leads["john@acme.co.uk"].country == "GB"
    assert leads["john@acme.co.uk"].domain == "acme.co.uk"
    assert leads["li@example.cn"].country == "CN"


async def test_a_messy_semicolon_export_with_bom(service: Service) -> None:
    """A spreadsheet's export: BOM, ``;``, synonyms, national phones, names for countries,
    plus-addressed duplicates, an unknown country (kept), one row without a valid email
    (rejected with its row number, the others kept)."""
    client, runtime = service
    csv_bytes = (
        "\ufeffE-Mail Address;FIRST NAME;Company Name;Country/Region;Phone Number;"
        "Job Title;Number of Employees;Notes\r\n"
        "Jane.Doe+promo@gmail.com;Jane;BigCorp GmbH;deutschland;030 1234567;VP Sales;"
        "1,000;met at booth\r\n"
        "janedoe@gmail.com;Jane;BigCorp GmbH;DE;;;;second visit\r\n"
        "bob@acme.com;Bob;Acme Inc;USA;(415) 555-2671;Engineer;51-200;\r\n"
        "not-an-email;Nobody;;;;;;\r\n"
        "eve@evil.io;Eve;Evil;Atlantis;12;;lots;\r\n"
    ).encode()
    r = await client.post("/v1/leads/import", content=csv_bytes, headers=CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["merged"]) == (3, 1)
    assert [(x["row"], x["errors"][0]["field"]) for x in body["rejected"]] == [(5, "email")]
    async with runtime.db.sessions() as session:
        leads = {lead.email_normalized: lead for lead in (await session.scalars(select(Lead)))}
    jane = leads["janedoe@gmail.com"]
    assert (jane.country, jane.phone, jane.employees) == ("DE", "+49301234567", 1000)
    assert (jane.seniority, jane.function, jane.free_mail) == ("vp", "sales", True)
    assert jane.custom == {"Notes": "second visit"}
    bob = leads["bob@acme.com"]
    assert (bob.country, bob.phone, bob.employees, bob.domain) == (
        "US",
        "+14155552671",
        51,
        "acme.com",
    )
    eve = leads["eve@evil.io"]
    assert eve.country is None and eve.phone == "12" and eve.employees is None
    assert eve.unnormalized == {"country": "Atlantis", "phone": "12", "employees": "lots"}


async def test_a_file_without_an_email_column_names_the_problem(service: Service) -> None:
    client, _ = service
    r = await client.post("/v1/leads/import", content="Name,Company\nAnn,Acme\n", headers=CSV)
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "file"
    assert "email column" in r.json()["fields"][0]["message"]
