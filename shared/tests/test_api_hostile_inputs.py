"""Hostile inputs against every service, on SQLite and (when reachable) PostgreSQL.

64-bit overflow, NUL characters, invalid UTF-8, deep nesting and huge strings, in paths,
queries and bodies: each answer is a documented 4xx with a problem body (never a 5xx; a
CSV import answers 200 and reports the bad rows).
PostgreSQL matters here: its text type refuses NUL, where SQLite stores it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import auth_header

from .test_api_fuzzing import SERVICES

ADMIN = auth_header("admin", "hostile")
PG = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")

NUL = "a\x00b"
OVERFLOW = 2**63  # one past the largest signed 64-bit integer
DEEP = '{"x":' * 100_000 + "{}" + "}" * 100_000
HUGE = "x" * 2_000_000
IDS = "a%00b"  # NUL in a path segment
Q_OVERFLOW = "9223372036854775808"


class Raw(bytes):
    """A body sent with its own content type (other bytes are sent as JSON)."""

    content_type = "application/octet-stream"


class CSV(Raw):
    content_type = "text/csv"


class Multipart(Raw):
    content_type = "multipart/form-data; boundary=b0undary"


# (method, path, JSON body or raw bytes or None)
Case = tuple[str, str, Any]
CASES: dict[str, list[Case]] = {
    "lead-intake": [
        ("POST", "/v1/leads", {"email": "a@b.io", "custom": {"k": NUL, NUL: "v"}}),
        ("POST", "/v1/leads", {"email": "a@b.io", "utm": {"source": NUL}, "company": NUL}),
        ("POST", "/v1/leads", {"email": "a@b.io", "employees": OVERFLOW}),
        ("POST", "/v1/leads", {"email": "a@b.io", "employees": -(OVERFLOW**2)}),
        ("POST", "/v1/leads", {"email": "a@b.io", "company": HUGE}),
        ("POST", "/v1/leads", {"email": "a@b.io", "custom": {"k": HUGE}}),
        ("POST", "/v1/leads", DEEP.encode()),
        ("POST", "/v1/leads", b'{"email": "\xff\xfe@b.io"}'),
        ("POST", "/v1/leads", {"email": "a\x00@b.io"}),
        ("GET", f"/v1/leads/{IDS}", None),
        ("POST", "/v1/leads/import", CSV(b"email,company\na@b.io,x\x00y\nc@d.io,ok\n")),
        ("POST", "/v1/leads/import", CSV(b"email,company\n\xff\xfe@b.io,\xc3\x28\n")),
        ("POST", "/v1/leads/import", CSV(b"email," + b"x" * 2_000_000 + b"\na@b.io,1\n")),
        # A malformed part header was a 500 (python-multipart's parse error escaped).
        ("POST", "/v1/leads/import", Multipart(b"--b0undary\r\n[]--b0undary--\r\n")),
        ("POST", "/v1/leads/import", Multipart(b"--b0undary\r\nContent-Disposition: \x00\r\n")),
        ("DELETE", f"/v1/leads/{IDS}", None),
        ("GET", f"/v1/leads/imports/{IDS}", None),
        ("POST", "/v1/engagements", {"email": "a@b.io", "type": NUL, "properties": {NUL: 1}}),
        ("POST", "/v1/engagements", {"lead_id": NUL, "type": "page_view"}),
        ("POST", "/v1/engagements", {"email": "a@b.io", "type": "page_view", "properties": DEEP}),
        ("POST", "/v1/forms", {"name": NUL, "allowed_origins": [NUL], "redirect_url": NUL}),
        ("POST", f"/v1/forms/{IDS}/submit", None),
    ],
    "scoring": [
        ("GET", f"/v1/scores/{IDS}", None),
        ("GET", f"/v1/scores/{'x' * 30_000}", None),
        ("PUT", "/v1/scoring/rules", {"mql_threshold": OVERFLOW}),
        ("PUT", "/v1/scoring/rules", DEEP.encode()),
    ],
    "routing": [
        ("POST", "/v1/reps", {"id": NUL, "name": NUL, "email": "r@x.io", "role": "sdr"}),
        ("POST", "/v1/reps", {"id": "r1", "name": "n", "role": "sdr", "capacity_per_day": 2**64}),
        ("GET", f"/v1/reps/{IDS}", None),
        ("PATCH", f"/v1/reps/{IDS}", {}),
        ("GET", f"/v1/assignments/{IDS}", None),
        ("GET", "/v1/queue?owner=a%00b&role=sdr", None),
        ("POST", f"/v1/leads/{IDS}/accept", None),
        ("POST", f"/v1/leads/{IDS}/disqualify", {"reason": NUL}),
        ("POST", "/v1/routing/simulate", {"rules": {"rules": []}, "limit": OVERFLOW}),
        ("PUT", "/v1/routing/rules", {"rules": [{"id": "a", "role": "sdr", "sla_minutes": 2**64}]}),
        ("PUT", "/v1/routing/rules", DEEP.encode()),
    ],
    "deals": [
        ("GET", f"/v1/deals/{IDS}", None),
        ("PATCH", f"/v1/deals/{IDS}", {"amount": "1e400"}),
        ("POST", f"/v1/deals/{IDS}/close", {"outcome": "won"}),
        ("GET", f"/v1/deals?limit={Q_OVERFLOW}&offset={Q_OVERFLOW}&owner=a%00b", None),
        ("PUT", "/v1/quotas/r1", {"period": "2026-Q4", "amount": OVERFLOW**2}),
        ("PUT", "/v1/quotas/r1", {"period": NUL, "amount": "1"}),
        ("PUT", f"/v1/quotas/{IDS}", {"period": "2026-Q4", "amount": "1"}),
        ("GET", "/v1/forecast?period=a%00b&owner=a%00b&currency=%00%00%00", None),
    ],
    "webhooks": [
        ("POST", "/v1/webhooks", {"url": f"https://example.com/{NUL}", "event_types": [NUL]}),
        ("POST", "/v1/webhooks", {"url": "https://example.com/", "description": HUGE}),
        ("GET", f"/v1/webhooks/{IDS}", None),
        ("DELETE", f"/v1/webhooks/{IDS}", None),
        ("GET", f"/v1/webhooks/{IDS}/deliveries?limit={Q_OVERFLOW}", None),
        ("POST", f"/v1/webhooks/{IDS}/deliveries/{IDS}/retry", None),
    ],
    "console": [
        ("GET", "/v1/funnel?from=9999-12-31T23:59:59%2B00:00&to=a%00b", None),
        ("GET", f"/v1/sla?limit={Q_OVERFLOW}&from=0001-01-01T00:00:00-23:59", None),
    ],
}


def _pg_reachable() -> bool:
    import socket

    host_port = PG.split("@", 1)[-1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 5432)), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'service.sqlite3'}"
        return
    if not _pg_reachable():
        pytest.skip(f"PostgreSQL not reachable at {PG}")
    name = f"hostile_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _documented(document: dict[str, Any], method: str, path: str) -> set[int]:
    """The statuses the OpenAPI documents for the operation ``path`` matches."""
    segments = path.split("?", 1)[0].split("/")
    for template, operations in document["paths"].items():
        parts = template.split("/")
        if len(parts) == len(segments) and all(
            p == s or p.startswith("{") for p, s in zip(parts, segments, strict=True)
        ):
            operation = operations.get(method.lower())
            if operation is not None:
                return {int(status) for status in operation["responses"]}
    raise AssertionError(f"{method} {path} matches no documented operation")


@pytest.mark.parametrize("service", list(SERVICES))
async def test_hostile_inputs_get_documented_answers(service: str, database_url: str) -> None:
    create_app, settings_cls = SERVICES[service]
    app: FastAPI = create_app(
        settings_cls(kafka_enabled=False, database_url=database_url, jwt_secret=DEV_JWT_SECRET)
    )
    document = app.openapi()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for method, path, body in CASES[service]:
                headers = dict(ADMIN)
                content: bytes | None = None
                if body is not None:
                    raw = isinstance(body, Raw)
                    headers["Content-Type"] = body.content_type if raw else "application/json"
                    content = body if isinstance(body, bytes) else json.dumps(body).encode()
                response = await client.request(method, path, headers=headers, content=content)
                where = f"{service} {method} {path[:80]}"
                assert response.status_code < 500, (where, response.text[:300])
                assert response.status_code in _documented(document, method, path), where
                if response.status_code < 400:  # a CSV import reports bad rows, not a 4xx
                    continue
                problem = response.json()
                assert set(problem) <= {"error", "detail", "fields"}, where
                assert isinstance(problem["error"], str) and isinstance(problem["detail"], str)
