"""The tracing middleware continues the caller's trace and counts every request."""

from __future__ import annotations

import secrets

import httpx
from fastapi import FastAPI
from prometheus_client import REGISTRY

from leadflow_shared.observability import TracingMiddleware, current_traceparent


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(TracingMiddleware)

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str | None]:
        return {"traceparent": current_traceparent()}

    return app


async def test_the_callers_trace_is_continued_echoed_and_counted() -> None:
    trace_id = secrets.token_hex(16)
    parent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    labels = {"method": "GET", "route": "/things/{thing_id}", "status": "200"}
    before = REGISTRY.get_sample_value("leadflow_http_requests_total", labels) or 0
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/things/1", headers={"traceparent": parent})
        fresh = await client.get("/things/2")
    inside = r.json()["traceparent"]
    assert inside.split("-")[1] == trace_id and inside != parent  # same trace, new span
    assert r.headers["traceparent"] == inside
    assert fresh.headers["traceparent"].split("-")[1] != trace_id  # no parent: a new trace
    after = REGISTRY.get_sample_value("leadflow_http_requests_total", labels)
    assert after == before + 2
