"""The embeddable form page in a real headless browser, against the running system.

Debian's ``chromium`` (installed by ``make browser``, a step of ``make integration``) is
driven by the ``playwright`` package through ``executable_path``; ``playwright install``
is never run. A missing browser fails this test rather than skipping it: CI must prove the
page works in a browser.

A stand-in for the customer's site runs on 127.0.0.1: it iframes the page and serves the
form's thank-you page, so the browser really lands there after the 303.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from leadflow_launcher.system import System
from leadflow_shared.broker import free_port
from tests.helpers import ADMIN, eventually

CHROMIUM = "/usr/bin/chromium"
THANKS = "<!doctype html><html lang=en><title>Thanks</title><h1>Thank you!</h1></html>"


@dataclass
class Site:
    """The customer's site: ``/thanks`` (the redirect target) and ``/host`` (iframes
    ``embed_url``). ``thanks_hits`` counts the browser's arrivals on the thank-you page."""

    port: int
    embed_url: str = ""
    thanks_hits: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _serve(site: Site) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/thanks"):
                site.thanks_hits.append(self.path)
                body = THANKS
            elif self.path == "/host":
                body = (
                    "<!doctype html><html lang=en><title>Acme</title><h1>Contact us</h1>"
                    f'<iframe title="Contact form" src="{site.embed_url}" width="500" '
                    'height="900"></iframe></html>'
                )
            else:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", site.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    s = Site(port=free_port())
    server = _serve(s)
    yield s
    server.shutdown()
    server.server_close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    # Fail, never skip: the browser is part of the test set-up (make browser).
    assert shutil.which("chromium") or shutil.which(CHROMIUM), (
        "chromium is not installed: run `make browser` (apt-get install chromium)"
    )
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            yield b
        finally:
            await b.close()


async def _create_form(http: httpx.AsyncClient, intake: str, site: Site) -> dict[str, Any]:
    r = await http.post(
        f"{intake}/v1/forms",
        headers=ADMIN,
        json={
            "name": "Talk to sales <Acme>",
            "allowed_origins": [site.origin],
            "redirect_url": f"{site.origin}/thanks",
            "fields": [
                {"name": "email", "label": "Work email"},
                {"name": "first_name", "label": "First name", "required": True},
                {"name": "last_name", "label": "Last name"},
                {"name": "company", "label": "Company"},
                {"name": "country", "label": "Country"},
                {"name": "consent_marketing", "label": "Send me product news"},
            ],
        },
    )
    assert r.status_code == 201, r.text
    form: dict[str, Any] = r.json()
    site.embed_url = f"{intake}{form['embed_path']}?utm_campaign=browser-test"
    return form


async def _lead_by_email(http: httpx.AsyncClient, intake: str, email: str) -> dict[str, Any]:
    """The lead with ``email``: a JSON post of the same email finds it (``merged``)."""
    r = await http.post(f"{intake}/v1/leads", headers=ADMIN, json={"email": email})
    assert r.status_code == 200 and r.json()["status"] == "merged", r.text
    r = await http.get(f"{intake}/v1/leads/{r.json()['lead_id']}", headers=ADMIN)
    assert r.status_code == 200, r.text
    lead: dict[str, Any] = r.json()
    return lead


async def _unlabelled(page: Page) -> list[str]:
    """Names of the page's inputs that have no label (the accessibility smoke check)."""
    found: list[str] = await page.evaluate(
        """() => [...document.querySelectorAll('input, textarea, select')]
             .filter(el => el.type !== 'hidden' && el.labels.length === 0)
             .map(el => el.name)"""
    )
    return found


async def test_visitor_fills_the_embedded_form_and_the_lead_is_captured(
    system: System, urls: dict[str, str], site: Site, browser: Browser
) -> None:
    intake = urls["lead-intake"]
    async with httpx.AsyncClient(timeout=30) as http:
        form = await _create_form(http, intake, site)
        page = await browser.new_page()

        # The customer's page frames the form (its origin is an allowed origin).
        await page.goto(f"{site.origin}/host")
        frame = page.frame_locator("iframe")
        await frame.get_by_label("Work email").fill("ada.browser@analytical-engines.io")
        await frame.get_by_label("First name").fill("Ada")
        await frame.get_by_label("Last name").fill("Lovelace")
        await frame.get_by_label("Company").fill("Analytical Engines")
        await frame.get_by_label("Country").fill("GB")
        await frame.get_by_label("Send me product news").check()
        await frame.get_by_role("button", name="Submit").click()
        # target=_top: the whole page lands on the customer's thank-you page.
        await page.wait_for_url(f"{site.origin}/thanks", timeout=15_000)
        assert await page.get_by_role("heading").inner_text() == "Thank you!"

        lead = await _lead_by_email(http, intake, "ada.browser@analytical-engines.io")
        assert lead["first_name"] == "Ada" and lead["last_name"] == "Lovelace"
        assert lead["company"] == "Analytical Engines" and lead["country"] == "GB"
        assert lead["consent"]["marketing"] is True
        assert lead["utm"]["campaign"] == "browser-test"  # from the iframe's src
        assert lead["source"] == f"form:{form['name']}"
        await page.close()


async def test_the_page_alone_is_accessible_and_posts_without_a_frame(
    system: System, urls: dict[str, str], site: Site, browser: Browser
) -> None:
    intake = urls["lead-intake"]
    async with httpx.AsyncClient(timeout=30) as http:
        form = await _create_form(http, intake, site)
        context = await browser.new_context(java_script_enabled=False)
        page = await context.new_page()
        await page.goto(f"{intake}{form['embed_path']}")
        assert await page.title() == "Talk to sales <Acme>"  # escaped in the HTML, shown as is
        assert await page.get_attribute("html", "lang") == "en"
        # Accessibility smoke check: every input has a label, and the honeypot is out of
        # the accessibility tree and of the tab order.
        context_js = await browser.new_context()
        page_js = await context_js.new_page()
        await page_js.goto(f"{intake}{form['embed_path']}")
        assert await _unlabelled(page_js) == []
        assert await page_js.get_by_role("textbox").count() == 5  # not the honeypot
        assert await page_js.get_by_role("textbox", name="Leave this field empty").count() == 0
        honeypot = page_js.locator("input[name=_honeypot]")
        assert await honeypot.get_attribute("tabindex") == "-1"
        box = await honeypot.bounding_box()
        assert box is None or box["x"] + box["width"] <= 0  # off-screen
        await context_js.close()

        # Without JavaScript at all: a plain form post.
        await page.get_by_label("Work email").fill("grace.nojs@navy-cobol.io")
        await page.get_by_label("First name").fill("Grace")
        await page.get_by_role("button", name="Submit").click()
        await page.wait_for_url(f"{site.origin}/thanks", timeout=15_000)
        lead = await _lead_by_email(http, intake, "grace.nojs@navy-cobol.io")
        assert lead["first_name"] == "Grace"
        await context.close()


async def test_a_bot_filling_the_honeypot_lands_on_thanks_and_nothing_is_stored(
    system: System, urls: dict[str, str], site: Site, browser: Browser
) -> None:
    intake = urls["lead-intake"]
    async with httpx.AsyncClient(timeout=30) as http:
        form = await _create_form(http, intake, site)
        page = await browser.new_page()
        await page.goto(f"{intake}{form['embed_path']}")
        await page.get_by_label("Work email").fill("bot.filler@spam-farm.io")
        await page.get_by_label("First name").fill("Bot")
        # What a bot does: fill every input it finds, the hidden one included.
        await page.locator("input[name=_honeypot]").fill("https://spam.example", force=True)
        hits = len(site.thanks_hits)
        await page.get_by_role("button", name="Submit").click()
        await page.wait_for_url(f"{site.origin}/thanks", timeout=15_000)
        assert len(site.thanks_hits) == hits + 1
        await page.close()

        # Nothing was stored: the same email is new to lead-intake (submit commits before
        # it answers, so a stored bot lead would be found here as "merged").
        r = await http.post(
            f"{intake}/v1/leads", headers=ADMIN, json={"email": "bot.filler@spam-farm.io"}
        )
        assert r.status_code == 202 and r.json()["status"] == "accepted", r.text


async def test_a_site_that_is_not_an_allowed_origin_cannot_frame_it(
    system: System, urls: dict[str, str], site: Site, browser: Browser
) -> None:
    intake = urls["lead-intake"]
    async with httpx.AsyncClient(timeout=30) as http:
        await _create_form(http, intake, site)
        page = await browser.new_page()
        # localhost is another origin than 127.0.0.1: frame-ancestors refuses it.
        await page.goto(f"http://localhost:{site.port}/host")

        async def blocked() -> bool:
            frames = [f for f in page.frames if f != page.main_frame]
            if not frames:
                return False
            return await frames[0].locator("form").count() == 0

        assert await eventually(blocked, timeout_s=5, what="the frame to be refused")
        # The allowed origin frames it.
        await page.goto(f"{site.origin}/host")
        await page.frame_locator("iframe").get_by_label("Work email").wait_for()
        await page.close()
