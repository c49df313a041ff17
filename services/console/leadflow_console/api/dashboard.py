"""``GET /``: the dashboard, one self-contained page (no data in it: it asks for a token
and reads the JSON API)."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["dashboard"])

PAGE = (files("leadflow_console") / "dashboard" / "index.html").read_text(encoding="utf-8")


def _hashes(tag: str, html: str) -> str:
    """CSP source hashes of the page's inline ``<tag>`` blocks, so nothing else may run."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(b.encode()).digest()).decode()}'" for b in blocks
    )


CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"script-src {_hashes('script', PAGE)}; "
    f"style-src {_hashes('style', PAGE)}; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=HEADERS)
