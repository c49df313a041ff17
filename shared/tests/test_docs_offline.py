"""Every service's /docs and /redoc work without internet: the pages load their scripts,
styles and icon from the service itself (bundled assets), never from a CDN."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leadflow_routing.main import create_app
from leadflow_routing.settings import RoutingSettings
from leadflow_shared.testing import running_service


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_api_pages_load_only_their_own_assets(tmp_path: Path, page: str) -> None:
    async with running_service(create_app, RoutingSettings, tmp_path) as (client, _):
        r = await client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        # Nothing outside the service: no scheme-qualified or protocol-relative URL in any
        # src, href or url that the page loads.
        loaded = re.findall(
            r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""", html
        )
        urls = [a or b for a, b in loaded]
        assert urls, html
        for url in urls:
            assert not re.match(r"^(https?:)?//", url), f"{page} loads {url}"
        assert "cdn.jsdelivr" not in html and "fonts.googleapis" not in html
        for url in urls:
            if url.startswith("/docs/assets/"):
                asset = await client.get(url)
                assert asset.status_code == 200, url
                assert len(asset.content) > 1000
                assert "max-age" in asset.headers["cache-control"]


async def test_unknown_assets_are_404(tmp_path: Path) -> None:
    async with running_service(create_app, RoutingSettings, tmp_path) as (client, _):
        assert (await client.get("/docs/assets/../settings.py")).status_code == 404
        assert (await client.get("/docs/assets/secrets.txt")).status_code == 404
        oauth = await client.get("/docs/oauth2-redirect")
        assert oauth.status_code == 200
