"""The embeddable form page: fields per form, escaping, CSP and framing, 404, OpenAPI."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import httpx

from leadflow_intake.embed import HONEYPOT, STYLE, STYLE_HASH
from leadflow_intake.flat import IGNORED
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header

Service = tuple[httpx.AsyncClient, ServiceRuntime]
ORIGIN = "https://www.acme.test"
ADMIN = auth_header("admin")


async def _form(client: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    body = {"name": "contact", "allowed_origins": [ORIGIN], "redirect_url": f"{ORIGIN}/thanks"}
    return await client.post("/v1/forms", json={**body, **extra}, headers=ADMIN)


class _Page(HTMLParser):
    """Inputs, labels and what else the tests look at, from the page's HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.label_for: set[str] = set()
        self.tags: list[str] = []
        self.html_lang: str | None = None
        self.form: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "html":
            self.html_lang = a.get("lang")
        elif tag in ("input", "textarea"):
            self.inputs.append(a)
        elif tag == "label" and a.get("for"):
            self.label_for.add(str(a["for"]))
        elif tag == "form":
            self.form = a


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


async def test_default_fields_page(service: Service) -> None:
    client, _ = service
    r = await _form(client)
    assert r.status_code == 201, r.text
    out = r.json()
    names = [f["name"] for f in out["fields"]]
    assert names[:3] == ["email", "first_name", "last_name"] and "consent_marketing" in names
    assert out["fields"][0]["required"] is True
    assert out["embed_path"] == f"/v1/forms/{out['form_key']}/embed"

    r = await client.get(out["embed_path"])  # no token: public
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = _parse(r.text)
    assert page.html_lang == "en" and "title" in page.tags and "script" not in page.tags
    assert page.form["method"] == "post"
    assert page.form["action"] == f"/v1/forms/{out['form_key']}/submit"
    visible = [i for i in page.inputs if i.get("type") != "hidden"]
    # every input, the honeypot included, has a <label for>
    assert all(i["id"] in page.label_for for i in visible)
    email = next(i for i in page.inputs if i["name"] == "email")
    assert email["type"] == "email" and "required" in email
    assert next(i for i in page.inputs if i["name"] == "consent_marketing")["type"] == "checkbox"
    # the honeypot is the field the submit endpoint ignores, and out of everyone's way
    assert HONEYPOT in IGNORED
    honeypot = next(i for i in page.inputs if i["name"] == HONEYPOT)
    assert honeypot["tabindex"] == "-1" and honeypot["autocomplete"] == "off"
    assert re.search(r'<div class="hp" aria-hidden="true">', r.text)


async def test_csp_and_framing(service: Service) -> None:
    client, _ = service
    out = (await _form(client)).json()
    r = await client.get(out["embed_path"])
    csp = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["frame-ancestors"] == ORIGIN  # framed by the customer's site only
    assert directives["form-action"] == f"'self' {ORIGIN}"  # the post, and its redirect
    assert directives["style-src"] == f"'sha256-{STYLE_HASH}'"
    assert "script-src" not in directives  # default-src 'none': no script at all
    assert f"<style>{STYLE}</style>" in r.text  # the hash is of what is served
    assert "x-frame-options" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_origins_that_are_not_plain_origins_stay_out_of_the_csp(service: Service) -> None:
    client, _ = service
    r = await client.post(
        "/v1/forms",
        json={
            "name": "x",
            "allowed_origins": ["https://ok.test:8443", "https://evil.test;script-src_*"],
            "redirect_url": "https://ok.test/thanks",
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    csp = (await client.get(r.json()["embed_path"])).headers["content-security-policy"]
    assert "frame-ancestors https://ok.test:8443" in csp and "evil" not in csp


async def test_everything_is_escaped(service: Service) -> None:
    client, _ = service
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    r = await client.post(
        "/v1/forms",
        json={
            "name": evil,
            "allowed_origins": [ORIGIN],
            "redirect_url": f"{ORIGIN}/t",
            "fields": [{"name": "email", "label": evil}],
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    r = await client.get(r.json()["embed_path"], params={"utm_campaign": '"><script>x</script>'})
    assert r.status_code == 200
    page = _parse(r.text)
    assert "script" not in page.tags and "img" not in page.tags
    assert "<script" not in r.text and "<img" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;" in r.text
    hidden = next(i for i in page.inputs if i["name"] == "utm_campaign")
    assert hidden["type"] == "hidden" and hidden["value"] == '"><script>x</script>'


async def test_configured_fields(service: Service) -> None:
    client, _ = service
    fields = [
        {"name": "email", "label": "E-mail"},
        {"name": "company", "label": "Firma", "required": True},
        {"name": "employees"},
        {"name": "consent_marketing", "label": "Ja, bitte"},
    ]
    r = await _form(client, fields=fields)
    assert r.status_code == 201, r.text
    out = r.json()["fields"]
    assert out == [
        {"name": "email", "label": "E-mail", "type": "email", "required": True},
        {"name": "company", "label": "Firma", "type": "text", "required": True},
        {"name": "employees", "label": "Number of employees", "type": "number", "required": False},
        {"name": "consent_marketing", "label": "Ja, bitte", "type": "checkbox", "required": False},
    ]
    page = _parse((await client.get(r.json()["embed_path"])).text)
    shown = [i["name"] for i in page.inputs if i["name"] != HONEYPOT]
    assert shown == ["email", "company", "employees", "consent_marketing"]
    assert "required" in next(i for i in page.inputs if i["name"] == "company")


async def test_bad_fields_are_422_naming_the_field(service: Service) -> None:
    client, _ = service
    cases: list[tuple[list[dict[str, Any]], str]] = [
        ([{"name": "email"}, {"name": "favourite_colour"}], "fields[1].name"),
        ([{"name": "email"}, {"name": "email"}], "fields[1].name"),
        ([{"name": "company"}], "fields"),
        ([{"name": "email"}, {"name": "company", "type": "checkbox"}], "fields[1].type"),
        ([{"name": "email", "type": "password"}], "fields.0.type"),
    ]
    for fields, named in cases:
        r = await _form(client, fields=fields)
        assert r.status_code == 422, (fields, r.text)
        assert named in [f["field"] for f in r.json()["fields"]], (fields, r.text)


async def test_unknown_key_is_a_404_problem(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/forms/fk_nope/embed")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


async def test_the_page_posts_from_its_own_origin(service: Service) -> None:
    """The page is served by lead-intake, so the browser posts with lead-intake's origin."""
    client, _ = service
    out = (await _form(client)).json()
    own = str(client.base_url).rstrip("/")
    r = await client.post(
        f"/v1/forms/{out['form_key']}/submit",
        data={"email": "own@acme.io"},
        headers={"Origin": own},
    )
    assert r.status_code == 303 and r.headers["location"] == f"{ORIGIN}/thanks"
    r = await client.post(
        f"/v1/forms/{out['form_key']}/submit",
        data={"email": "own@acme.io"},
        headers={"Origin": "https://elsewhere.test"},
    )
    assert r.status_code == 403


async def test_openapi_documents_the_page(service: Service) -> None:
    client, _ = service
    doc = (await client.get("/openapi.json")).json()
    op = doc["paths"]["/v1/forms/{form_key}/embed"]["get"]
    assert "text/html" in op["responses"]["200"]["content"]
    assert "application/json" in op["responses"]["404"]["content"]  # a problem, not HTML
    assert "security" not in op or op["security"] == []
