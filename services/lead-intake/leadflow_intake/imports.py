"""CSV imports, the bulk lane: receive into a staging table, then capture chunk by chunk.

Nothing is lost on the way: a received row sits in ``import_rows`` until the transaction
that captures it (lead rows, ``leads.imported`` events in the outbox, counters) also
deletes it. A process stopping mid-import leaves its lease to lapse; processing then
resumes where the last committed chunk ended, and an upload that was cut off is marked
failed. ``done`` is written only once no staged row is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import ValidationError

from leadflow_intake.capture import capture_leads
from leadflow_intake.csv_stream import csv_rows
from leadflow_intake.errors import PayloadTooLarge
from leadflow_intake.flat import lead_from_flat
from leadflow_intake.repository import ImportRepository
from leadflow_intake.schemas import ImportRejection, ImportStatus, LeadIn
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.db import Database
from leadflow_shared.errors import NotFound
from leadflow_shared.events import Topic
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import Outbox

ChunkOutcome = Literal["more", "done", "not_ours"]


@dataclass(frozen=True)
class Received:
    import_id: str
    rows: int


async def receive_import(
    db: Database,
    settings: IntakeSettings,
    body: AsyncIterator[bytes],
    *,
    worker: str,
    created_by: str,
    filename: Callable[[], str | None] = lambda: None,
) -> Received:
    """Stage every row of the CSV in ``body`` (one transaction per chunk of rows) and
    hand the import to processing. On any error the import is marked failed and its
    staged rows dropped before the error propagates. ``filename`` is asked once the body
    is read (a multipart part names its file only as it arrives)."""
    import_id = new_id()
    lease = timedelta(seconds=settings.import_lease_s)
    now = utcnow()
    async with db.transaction(off_loop=True) as session:
        await ImportRepository(session).create(
            {
                "id": import_id,
                "status": "receiving",
                "created_by": created_by,
                "rows": 0,
                "processed": 0,
                "accepted": 0,
                "merged": 0,
                "rejected_count": 0,
                "claimed_by": worker,
                "claimed_until": now + lease,
                "created_at": now,
            }
        )
    received = 0
    try:
        async for rows in csv_rows(
            body, max_bytes=settings.import_max_bytes, batch_rows=settings.import_chunk_rows
        ):
            received += len(rows)
            if received > settings.import_max_rows:
                raise PayloadTooLarge(
                    f"the file has more than {settings.import_max_rows} rows (the import "
                    "limit); split it into several files"
                )
            async with db.transaction(off_loop=True) as session:
                await ImportRepository(session).stage(import_id, rows, lease=utcnow() + lease)
    except BaseException as exc:
        await asyncio.shield(_fail(db, import_id, _reason(exc)))
        raise
    async with db.transaction() as session:
        await ImportRepository(session).update(
            import_id, status="processing", claimed_until=utcnow() + lease, filename=filename()
        )
    return Received(import_id, received)


def _reason(exc: BaseException) -> str:
    detail = getattr(exc, "detail", None)
    if isinstance(detail, str):
        return detail
    return "the upload was interrupted before the whole file arrived; send it again"


async def _fail(db: Database, import_id: str, error: str) -> None:
    async with db.transaction() as session:
        repo = ImportRepository(session)
        await repo.discard(import_id)
        await repo.update(import_id, status="failed", error=error[:2000], finished_at=utcnow())


def _errors_of(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or "row", "message": e["msg"]}
        for e in exc.errors()
    ]


async def process_next_chunk(
    db: Database,
    outbox: Outbox,
    settings: IntakeSettings,
    import_id: str,
    *,
    worker: str,
    limit: int,
) -> ChunkOutcome:
    """Capture the next ``limit`` staged rows of an import in one transaction."""
    async with db.transaction(off_loop=True) as session:
        repo = ImportRepository(session)
        now = utcnow()
        rejected_so_far = await repo.claim(
            import_id, worker, now, now + timedelta(seconds=settings.import_lease_s)
        )
        if rejected_so_far is None:
            return "not_ours"
        staged = await repo.next_rows(import_id, limit)
        if not staged:
            await repo.update(import_id, status="done", finished_at=now, claimed_until=None)
            return "done"
        leads: list[LeadIn] = []
        rejections: list[tuple[int, Any]] = []
        for row, values in staged:
            try:
                leads.append(lead_from_flat(values))
            except ValidationError as exc:
                rejections.append((row, _errors_of(exc)))
        results = await capture_leads(
            session, outbox, leads, topic=Topic.LEADS_IMPORTED, channel="import"
        )
        accepted = sum(1 for r in results if r.status == "accepted")
        room = max(0, settings.import_max_listed_rejections - rejected_so_far)
        await repo.reject(import_id, rejections[:room])
        await repo.consume(import_id, staged[-1][0])
        await repo.count(
            import_id,
            processed=len(staged),
            accepted=accepted,
            merged=len(results) - accepted,
            rejected=len(rejections),
        )
        return "more"


async def reject_unstorable_row(
    db: Database, settings: IntakeSettings, import_id: str, error: BaseException
) -> None:
    """The next staged row keeps failing to store: report it rejected and move on."""
    async with db.transaction() as session:
        repo = ImportRepository(session)
        staged = await repo.next_rows(import_id, 1)
        if not staged:
            return
        row = staged[0][0]
        current = await repo.get(import_id)
        listed = current.rejected_count if current is not None else 0
        if listed < settings.import_max_listed_rejections:
            message = f"could not be stored ({type(error).__name__}); check its values"
            await repo.reject(import_id, [(row, [{"field": "row", "message": message}])])
        await repo.consume(import_id, row)
        await repo.count(import_id, processed=1, accepted=0, merged=0, rejected=1)


async def import_status(db: Database, import_id: str, settings: IntakeSettings) -> ImportStatus:
    async with db.sessions() as session:
        repo = ImportRepository(session)
        found = await repo.get(import_id)
        if found is None:
            raise NotFound(f"no import {import_id}")
        rejected = await repo.rejections(import_id, settings.import_max_listed_rejections)
    return ImportStatus(
        import_id=found.id,
        status=found.status,
        filename=found.filename,
        created_by=found.created_by,
        rows=found.rows,
        processed=found.processed,
        accepted=found.accepted,
        merged=found.merged,
        rejected=[ImportRejection(row=row, errors=errors) for row, errors in rejected],
        rejected_count=found.rejected_count,
        error=found.error,
        created_at=found.created_at,
        finished_at=found.finished_at,
    )
