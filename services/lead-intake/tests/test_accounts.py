"""Accounts (admin CSV, won deals) and lead-to-account matching at capture."""

from __future__ import annotations

from decimal import Decimal

import httpx

from leadflow_intake.accounts import AccountIndex, company_key, matchable_domain
from leadflow_shared.events import AccountAssigned, DealWon
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
ADMIN = auth_header("admin", "ops")
ADMIN_CSV = {**ADMIN, "content-type": "text/csv"}
WEB = auth_header("integration", "website")


class _Row:
    def __init__(self, id: str, name: str, domain: str | None, owner: str | None) -> None:
        self.id, self.name, self.domain, self.owner = id, name, domain, owner
        self.name_key = company_key(name)


def test_company_names_fold_case_punctuation_accents_and_legal_suffixes() -> None:
    assert company_key("ACME, Inc.") == "acme"
    assert company_key("Acme Corporation") == "acme"
    assert company_key("Müller & Söhne GmbH & Co. KG") == "muller and sohne"
    assert company_key("Initech S.A.") == "initech"
    assert company_key("The Globex Group Ltd") == "globex"
    assert company_key("B.V.") == "bv"  # a name of only suffixes keeps them
    assert company_key("O'Reilly Media LLC") == "oreilly media"


def test_free_mail_and_disposable_domains_never_identify_an_account() -> None:
    assert matchable_domain("gmail.com") is None
    assert matchable_domain("mailinator.com") is None
    assert matchable_domain("shop.acme.co.uk") == "acme.co.uk"
    assert matchable_domain(None) is None


def test_the_index_matches_by_domain_then_by_fuzzy_name_above_the_threshold() -> None:
    index = AccountIndex()
    index.put(_Row("a1", "Acme Corp", "acme.com", "am-1"))
    index.put(_Row("a2", "Initech Solutions GmbH", None, "am-2"))
    index.put(_Row("a3", "Globex Systems", "globex.io", None))
    by_domain = index.match("acme.com", "Something else")
    assert by_domain is not None
    assert (by_domain["account_id"], by_domain["match"], by_domain["confidence"]) == (
        "a1",
        "domain",
        1.0,
    )
    assert by_domain["owner"] == "am-1" and by_domain["domain"] == "acme.com"
    # Suffixes and case do not count; a typo does a little.
    exact = index.match("gmail.com", "ACME, Inc.")
    assert exact is not None and exact["match"] == "name" and exact["confidence"] == 1.0
    typo = index.match(None, "Initech Solution Inc")
    assert typo is not None and typo["account_id"] == "a2" and 0.9 <= typo["confidence"] < 1
    # Below the threshold, another first word (blocking key), or nothing to go on: none.
    assert index.match(None, "Globex") is None
    assert index.match(None, "Initrode Solutions") is None
    assert index.match(None, None) is None
    # A renamed account moves to its new block.
    index.put(_Row("a3", "Hooli Systems", "globex.io", None))
    assert index.match(None, "Globex Systems") is None
    moved = index.match(None, "hooli systems")
    assert moved is not None and moved["account_id"] == "a3"


async def test_accounts_import_from_a_tolerant_csv_and_read_back(service: Service) -> None:
    client, _ = service
    csv = (
        "\ufeffAccount Name;Website;Account Owner\n"
        "Acme Corp;https://www.acme.com/;am-1\n"
        "Initech GmbH;;ae-2\n"
        ";nameless.com;am-1\n"
        "Freemail Ltd;gmail.com;am-1\n"
        "Acme Corporation;acme.com;am-3\n"  # the same domain: an update, the last wins
    ).encode()
    r = await client.post("/v1/accounts/import", content=csv, headers=ADMIN_CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["updated"], body["rejected_count"]) == (2, 0, 2)
    assert [(x["row"], x["errors"][0]["field"]) for x in body["rejected"]] == [
        (4, "name"),
        (5, "domain"),
    ]
    listed = (await client.get("/v1/accounts", headers=ADMIN)).json()["accounts"]
    assert [(a["name"], a["domain"], a["owner"]) for a in listed] == [
        ("Acme Corporation", "acme.com", "am-3"),
        ("Initech GmbH", None, "ae-2"),
    ]
    found = (await client.get("/v1/accounts?domain=https://acme.com", headers=ADMIN)).json()
    (acme,) = found["accounts"]
    one = await client.get(f"/v1/accounts/{acme['account_id']}", headers=ADMIN)
    assert one.status_code == 200 and one.json()["source"] == "import"
    assert (await client.get("/v1/accounts/nope", headers=ADMIN)).status_code == 404
    # A second upload updates by domain (or name) and creates the rest.
    again = b"name,domain,owner\nACME Inc,acme.com,am-9\nInitech GmbH,initech.de,\nHooli,,\n"
    r = await client.post("/v1/accounts/import", content=again, headers=ADMIN_CSV)
    assert (r.json()["created"], r.json()["updated"]) == (1, 2)
    initech = (await client.get("/v1/accounts?domain=initech.de", headers=ADMIN)).json()
    assert initech["accounts"][0]["owner"] == "ae-2"  # no owner given: kept
    # Only admins import; a file without a name column is a 422; not CSV is a 415.
    manager_csv = {**auth_header("manager"), "content-type": "text/csv"}
    r = await client.post("/v1/accounts/import", content=again, headers=manager_csv)
    assert r.status_code == 403
    r = await client.post("/v1/accounts/import", content=b"domain\nx.com\n", headers=ADMIN_CSV)
    assert r.status_code == 422 and "name column" in r.text
    r = await client.post(
        "/v1/accounts/import", content=b"{}", headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 415


async def test_a_captured_lead_carries_its_account_match(service: Service) -> None:
    client, runtime = service
    csv = b"name,domain,owner\nAcme Corp,acme.com,am-1\nInitech Solutions GmbH,,am-2\n"
    assert (
        await client.post("/v1/accounts/import", content=csv, headers=ADMIN_CSV)
    ).status_code == 200
    by_domain = await client.post(
        "/v1/leads", json={"email": "jo@eu.acme.com", "company": "ACME"}, headers=WEB
    )
    by_name = await client.post(
        "/v1/leads",
        json={"email": "bo@gmail.com", "company": "Initech Solution, Inc."},
        headers=WEB,
    )
    # A free-mail domain never matches (another gmail lead of no company: no account).
    none = await client.post("/v1/leads", json={"email": "al@gmail.com"}, headers=WEB)
    captured = {e["lead_id"]: e for e in await outbox_events(runtime, "lead.captured")}
    acme = captured[by_domain.json()["lead_id"]]["account"]
    assert (acme["name"], acme["owner"], acme["match"], acme["confidence"]) == (
        "Acme Corp",
        "am-1",
        "domain",
        1.0,
    )
    initech = captured[by_name.json()["lead_id"]]["account"]
    assert initech["match"] == "name" and initech["owner"] == "am-2"
    assert 0.9 <= initech["confidence"] < 1.0
    assert captured[none.json()["lead_id"]]["account"] is None
    lead = (await client.get(f"/v1/leads/{by_name.json()['lead_id']}", headers=WEB)).json()
    assert lead["account"]["account_id"] == initech["account_id"]
    # A merge that brings a company matches then, and lead.merged says so.
    await client.post(
        "/v1/leads", json={"email": "al@gmail.com", "company": "acme corp."}, headers=WEB
    )
    (merged,) = await outbox_events(runtime, "lead.merged")
    assert merged["account"]["match"] == "name" and merged["account"]["owner"] == "am-1"


async def test_a_won_deal_makes_an_account_owned_by_its_ae_then_its_am(service: Service) -> None:
    client, runtime = service
    r = await client.post(
        "/v1/leads", json={"email": "cto@wonco.com", "company": "WonCo Ltd"}, headers=WEB
    )
    lead_id = r.json()["lead_id"]
    deal_id = new_id()
    won = DealWon(
        lead_id=lead_id,
        deal_id=deal_id,
        owner="ae-7",
        amount=Decimal("1000"),
        currency="EUR",
        company="WonCo Ltd",
        closed_at=utcnow(),
    )
    assert await deliver(runtime, won)
    (account,) = (await client.get("/v1/accounts?domain=wonco.com", headers=ADMIN)).json()[
        "accounts"
    ]
    assert (account["source"], account["owner"], account["owner_role"]) == ("deal", "ae-7", "ae")
    assigned = AccountAssigned(
        lead_id=lead_id, owner="am-5", deal_id=deal_id, rule="r", strategy="s", reason="won"
    )
    assert await deliver(runtime, assigned)
    account = (await client.get(f"/v1/accounts/{account['account_id']}", headers=ADMIN)).json()
    assert (account["owner"], account["owner_role"]) == ("am-5", "am")
    # The next lead from that company goes to the AM.
    r = await client.post("/v1/leads", json={"email": "cfo@wonco.com"}, headers=WEB)
    captured = [
        e for e in await outbox_events(runtime, "lead.captured") if e["email"] == "cfo@wonco.com"
    ]
    assert captured[0]["account"]["owner"] == "am-5"
    # Another won deal (its AE) does not take the account from the AM.
    again = won.model_copy(update={"deal_id": new_id(), "owner": "ae-8"})
    assert await deliver(runtime, again)
    account = (await client.get(f"/v1/accounts/{account['account_id']}", headers=ADMIN)).json()
    assert account["owner"] == "am-5"
