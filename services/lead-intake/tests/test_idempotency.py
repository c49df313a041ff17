"""Idempotency-Key (contract v2): another body is a 422 naming the key; identical requests
at the same moment, even through two replicas on PostgreSQL, make one lead and no 500."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from leadflow_intake.main import create_app
from leadflow_intake.models import IdempotencyRecord, Lead
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import auth_header, outbox_events

PG = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
WEB = auth_header("integration", "website")


def _pg_reachable() -> bool:
    url = urlparse(PG)
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5432), timeout=1):
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
    name = f"intake_idem_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(PG)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = PG.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        yield f"{base}/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def _replicas(
    stack: AsyncExitStack, database_url: str, count: int
) -> list[tuple[httpx.AsyncClient, ServiceRuntime]]:
    """``count`` lead-intake processes' apps on one database (SQLite: one)."""
    if database_url.startswith("sqlite"):
        count = 1
    running = []
    for _ in range(count):
        app: FastAPI = create_app(
            IntakeSettings(
                kafka_enabled=False, database_url=database_url, jwt_secret=DEV_JWT_SECRET
            )
        )
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        )
        running.append((client, app.state.runtime))
    return running


async def test_same_key_with_another_body_is_422_naming_the_key(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        ((client, runtime),) = await _replicas(stack, database_url, 1)
        headers = {**WEB, "Idempotency-Key": "order-77"}
        first = await client.post("/v1/leads", json={"email": "a@x.io"}, headers=headers)
        assert first.status_code == 202
        # The same body (other spacing and key order) is a retry: the first answer.
        again = await client.post(
            "/v1/leads",
            content=b'{ "email" : "a@x.io",  "utm": {} }',
            headers={**headers, "content-type": "application/json"},
        )
        assert again.status_code == 202 and again.json() == first.json()
        other = await client.post(
            "/v1/leads", json={"email": "b@x.io", "title": "CTO"}, headers=headers
        )
        assert other.status_code == 422, other.text
        body = other.json()
        assert body["fields"][0]["field"] == "Idempotency-Key"
        assert "order-77" in body["fields"][0]["message"] and "order-77" in body["detail"]
        # Nothing of the refused body was stored; another client may use the same key.
        async with runtime.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Lead)) == 1
        mine = await client.post(
            "/v1/leads",
            json={"email": "b@x.io"},
            headers={**auth_header("integration", "crm"), "Idempotency-Key": "order-77"},
        )
        assert mine.status_code == 202


async def test_another_body_in_the_same_group_commit_is_refused(database_url: str) -> None:
    async with AsyncExitStack() as stack:
        ((client, runtime),) = await _replicas(stack, database_url, 1)
        headers = {**WEB, "Idempotency-Key": "k-group"}
        answers = await asyncio.gather(
            *(
                client.post("/v1/leads", json={"email": f"g{i % 2}@x.io"}, headers=headers)
                for i in range(6)
            )
        )
        codes = sorted(r.status_code for r in answers)
        winner = next(r for r in answers if r.status_code == 202).json()
        assert codes == [202, 202, 202, 422, 422, 422], [r.text for r in answers]
        for r in answers:
            if r.status_code == 202:
                assert r.json() == winner
            else:
                assert r.json()["fields"][0]["field"] == "Idempotency-Key"
        async with runtime.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Lead)) == 1


async def test_identical_requests_at_the_same_moment_make_one_lead(database_url: str) -> None:
    """Two replicas (PostgreSQL) receive the same request with the same key at once,
    repeatedly: one lead, one lead.captured, every answer the same, never a 500."""
    async with AsyncExitStack() as stack:
        replicas = await _replicas(stack, database_url, 2)
        for round_ in range(5):
            headers = {**WEB, "Idempotency-Key": f"race-{round_}"}
            body = {"email": f"Race.{round_}+x@Example.com", "country": "germany"}
            answers = await asyncio.gather(
                *(
                    replicas[i % len(replicas)][0].post("/v1/leads", json=body, headers=headers)
                    for i in range(8)
                )
            )
            assert {r.status_code for r in answers} == {202}, [r.text for r in answers]
            assert len({r.text for r in answers}) == 1
        runtime = replicas[0][1]
        async with runtime.db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(Lead)) == 5
            records = (await session.scalars(select(IdempotencyRecord))).all()
            assert len(records) == 5
            assert {r.status for r in records} == {"accepted"}
            assert all(r.body_hash and r.lead_id for r in records)
        assert len(await outbox_events(runtime, "lead.captured")) == 5
        assert await outbox_events(runtime, "lead.merged") == []
