"""The bulk lane: streamed CSV imports, their status, limits and recovery."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from leadflow_intake import capture, imports
from leadflow_intake.imports import receive_import
from leadflow_intake.main import create_app
from leadflow_intake.models import Lead, LeadImport
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, running_service

Service = tuple[httpx.AsyncClient, ServiceRuntime]
WEB = auth_header("integration", "website")
CSV = {**WEB, "Content-Type": "text/csv"}


async def _generated_csv(rows: int, *, bad_every: int = 0) -> AsyncIterator[bytes]:
    """A CSV produced while it is sent, a few hundred rows at a time (never whole)."""
    yield b"Email Address;First Name;Country/Region;Employees\n"
    batch: list[str] = []
    for i in range(1, rows + 1):
        email = "broken" if bad_every and i % bad_every == 0 else f"lead{i}@example.com"
        batch.append(f"{email};Ann {i};DE;{i % 900}\n")
        if len(batch) == 500:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


async def _wait_done(client: httpx.AsyncClient, import_id: str, timeout_s: float = 25) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = await client.get(f"/v1/leads/imports/{import_id}", headers=WEB)
        assert r.status_code == 200, r.text
        if r.json()["status"] in ("done", "failed"):
            return r.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"import {import_id} did not finish: {r.json()}")


async def _count(runtime: ServiceRuntime, query: Any) -> int:
    async with runtime.db.sessions() as session:
        return int(await session.scalar(query) or 0)


async def test_large_streamed_import_completes_with_the_right_counts(service: Service) -> None:
    client, runtime = service
    rows = 30_000
    r = await client.post(
        "/v1/leads/import", content=_generated_csv(rows, bad_every=5_000), headers=CSV
    )
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/leads/imports/{r.json()['import_id']}"
    done = await _wait_done(client, r.json()["import_id"], timeout_s=28)
    assert done["status"] == "done"
    assert (done["rows"], done["processed"]) == (rows, rows)
    assert (done["accepted"], done["merged"], done["rejected_count"]) == (rows - 6, 0, 6)
    assert [x["row"] for x in done["rejected"]] == [5_001 + 5_000 * k for k in range(6)]
    assert await _count(runtime, select(func.count()).select_from(Lead)) == rows - 6


async def test_imported_leads_are_announced_on_leads_imported(service: Service) -> None:
    client, runtime = service
    await client.post("/v1/leads", json={"email": "known@x.io"}, headers=WEB)
    csv_text = "email,title\nnew@x.io,CTO\nKnown@x.io,VP Sales\n"
    r = await client.post("/v1/leads/import", content=csv_text, headers=CSV)
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["merged"]) == (1, 1)
    table = runtime.spec.tables.outbox
    async with runtime.db.sessions() as session:
        rows = (
            await session.execute(
                select(table.c.topic, table.c.event_type, table.c.payload).order_by(table.c.seq)
            )
        ).all()
    assert [(t, e) for t, e, _ in rows] == [
        ("leads.captured", "lead.captured"),
        ("leads.imported", "lead.captured"),
        ("leads.imported", "lead.merged"),
    ]
    assert rows[2].payload["title"] == "VP Sales"
    assert rows[2].payload["changed_fields"] == ["title"]


async def test_malformed_row_is_rejected_with_its_row_number_and_the_others_kept(
    service: Service,
) -> None:
    client, _ = service
    csv_text = (
        "\ufeffE-mail;First Name;Company Name;Notes\r\n"
        'a@x.io;Ann;Acme;"two\r\nlines"\r\n'
        "\r\n"
        "nobody-at-all;Bob;Bx;\r\n"
        "c@x.io;Cy;Cx;ok\r\n"
    )
    r = await client.post(
        "/v1/leads/import",
        files={"file": ("show.csv", csv_text.encode(), "text/csv")},
        headers=WEB,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "done" and body["filename"] == "show.csv"
    assert (body["accepted"], body["merged"], body["rejected_count"]) == (2, 0, 1)
    # Header row 1, the quoted two-line record row 2, the blank line row 3.
    assert [(x["row"], x["errors"][0]["field"]) for x in body["rejected"]] == [(4, "email")]


async def test_import_over_the_row_limit_is_413_and_keeps_nothing(tmp_path: Path) -> None:
    async with running_service(
        create_app, IntakeSettings, tmp_path, import_max_rows=1000, import_chunk_rows=300
    ) as (client, runtime):
        r = await client.post("/v1/leads/import", content=_generated_csv(1001), headers=CSV)
        assert r.status_code == 413, r.text
        assert "1000 rows" in r.json()["detail"]
        async with runtime.db.sessions() as session:
            (failed,) = (await session.scalars(select(LeadImport))).all()
        assert failed.status == "failed" and "1000 rows" in (failed.error or "")
        assert await _count(runtime, select(func.count()).select_from(Lead)) == 0
        r = await client.post("/v1/leads/import", content=_generated_csv(1000), headers=CSV)
        assert r.status_code == 200 and r.json()["accepted"] == 1000


async def test_import_refuses_other_content_types_and_a_file_without_email(
    service: Service,
) -> None:
    client, _ = service
    r = await client.post("/v1/leads/import", json={"email": "a@x.io"}, headers=WEB)
    assert r.status_code == 415
    r = await client.post("/v1/leads/import", content="name,company\nA,B\n", headers=CSV)
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "file"
    r = await client.post("/v1/leads/import", content="", headers=CSV)
    assert r.status_code == 422


async def test_import_status_is_visible_to_its_owner_and_managers(service: Service) -> None:
    client, _ = service
    r = await client.post(
        "/v1/leads/import",
        content="email\na@x.io\n",
        headers={**CSV, "Prefer": "respond-async"},
    )
    assert r.status_code == 202
    import_id = r.json()["import_id"]
    done = await _wait_done(client, import_id)
    assert done["status"] == "done" and done["accepted"] == 1 and done["finished_at"]
    other = auth_header("integration", "someone-else")
    assert (await client.get(f"/v1/leads/imports/{import_id}", headers=other)).status_code == 404
    manager = auth_header("manager", "m-1")
    assert (await client.get(f"/v1/leads/imports/{import_id}", headers=manager)).status_code == 200
    assert (await client.get("/v1/leads/imports/nope", headers=WEB)).status_code == 404


async def test_an_import_left_by_a_stopped_process_is_resumed(tmp_path: Path) -> None:
    async with running_service(
        create_app, IntakeSettings, tmp_path, import_lease_s=0.3, import_chunk_rows=100
    ) as (client, runtime):
        settings = runtime.settings
        assert isinstance(settings, IntakeSettings)
        # Received by a process that then stopped: nobody will renew its lease.
        received = await receive_import(
            runtime.db, settings, _generated_csv(450), worker="gone", created_by="website"
        )
        done = await _wait_done(client, received.import_id)
        assert (done["status"], done["accepted"]) == ("done", 450)


async def test_an_upload_cut_off_by_a_stop_is_marked_failed(service: Service) -> None:
    client, runtime = service
    async with runtime.db.transaction() as session:
        session.add(
            LeadImport(
                id="imp-cut",
                status="receiving",
                created_by="website",
                rows=100,
                processed=0,
                accepted=0,
                merged=0,
                rejected_count=0,
                claimed_by="gone",
                claimed_until=utcnow() - timedelta(seconds=1),
                created_at=utcnow(),
            )
        )
    worker = runtime.state["import_worker"]
    await worker._take_over_lapsed()
    status = (await client.get("/v1/leads/imports/imp-cut", headers=WEB)).json()
    assert status["status"] == "failed" and "send it again" in status["error"]


async def test_a_row_the_database_refuses_is_rejected_alone_and_an_outage_waited_out(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = service
    real = capture.capture_leads
    outages = [OperationalError("SELECT 1", {}, Exception("connection lost"))] * 2

    async def flaky(session: Any, outbox: Any, leads: Any, **kwargs: Any) -> Any:
        if outages:
            raise outages.pop()
        if any(lead.email == "poison@x.io" for lead in leads):
            raise ValueError("refused by the database")
        return await real(session, outbox, leads, **kwargs)

    monkeypatch.setattr(imports, "capture_leads", flaky)
    csv_text = "email\na@x.io\npoison@x.io\nc@x.io\n"
    r = await client.post("/v1/leads/import", content=csv_text, headers=CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["accepted"], body["rejected_count"]) == ("done", 2, 1)
    ((row, (error,)),) = [(x["row"], x["errors"]) for x in body["rejected"]]
    assert (row, error["field"]) == (3, "row") and "could not be stored" in error["message"]
