"""The background worker that captures received imports, one chunk per transaction.

It runs imports one after another and leaves room for live leads: chunks are small (a
chunk holds the event loop and, on SQLite, the write lock while it is captured) and the
next one starts only once the live capture lane is idle. Every
``import_lease_s / 3`` it looks for imports whose worker went silent: it resumes those
being processed and fails those whose upload was cut off.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from leadflow_intake.capture_batcher import CaptureBatcher, capture_batcher
from leadflow_intake.imports import process_next_chunk, reject_unstorable_row
from leadflow_intake.repository import ImportRepository
from leadflow_intake.settings import IntakeSettings
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.observability import BULK_LANE, log_fields, use_lane
from leadflow_shared.service import ServiceRuntime

log = logging.getLogger(__name__)
_STATE_KEY = "import_worker"
# A chunk that fails is retried row by row; a row failing this often is rejected (a
# database outage is waited out instead, never blamed on rows).
ROW_ATTEMPTS = 3
LIVE_FIRST_MAX_WAIT_S = 0.5


class ImportWorker:
    def __init__(self, runtime: ServiceRuntime, live: CaptureBatcher | None = None) -> None:
        settings = runtime.settings
        assert isinstance(settings, IntakeSettings)
        self.settings = settings
        self.db = runtime.db
        self.outbox = runtime.outbox
        self.live = live
        self.id = f"intake-{new_id()}"
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._active: set[str] = set()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name="import-worker"),
            asyncio.create_task(self._watch_leases(), name="import-leases"),
        ]

    async def stop(self) -> None:
        """Finish the chunk in hand and stop; the lease lapses and the import resumes
        on the next start (or in another replica)."""
        self._stopping = True
        runner, watcher = self._tasks or (None, None)
        if watcher is not None:
            watcher.cancel()
        if runner is not None:
            if not self._active:
                runner.cancel()  # idle, waiting for work
            try:
                await asyncio.wait_for(runner, timeout=30)
            except (TimeoutError, asyncio.CancelledError):
                pass
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def submit(self, import_id: str) -> None:
        if import_id not in self._queued:
            self._queued.add(import_id)
            self._queue.put_nowait(import_id)

    async def _run(self) -> None:
        while not self._stopping:
            import_id = await self._queue.get()
            self._queued.discard(import_id)
            try:
                await self.process(import_id)
            except Exception:
                # The lease lapses and the watcher hands the import back to a worker.
                log.exception("import processing failed", extra=log_fields(import_id=import_id))

    async def process(self, import_id: str) -> None:
        """Capture the import's staged rows until none is left (or it is not ours)."""
        if import_id in self._active:
            return
        self._active.add(import_id)
        try:
            await self._process(import_id)
        finally:
            self._active.discard(import_id)

    async def _process(self, import_id: str) -> None:
        chunk = self.settings.import_chunk_rows
        isolate = 0  # rows left to take one at a time after a failed chunk
        failures = 0
        outage = 0.0
        while not self._stopping:
            limit = 1 if isolate else chunk
            try:
                # Stamped bulk (ce_lane): every consumer downstream serves it after live work.
                with use_lane(BULK_LANE):
                    outcome = await process_next_chunk(
                        self.db, self.outbox, self.settings, import_id, worker=self.id, limit=limit
                    )
            except Exception as exc:
                if _database_unavailable(exc):
                    # Not the rows' fault: wait and try again; nothing is rejected for it.
                    outage = min(outage * 2, 5.0) if outage else 0.1
                    log.warning(
                        "import paused: database unavailable",
                        extra=log_fields(import_id=import_id, retry_in_s=outage),
                    )
                    await asyncio.sleep(outage)
                    continue
                if limit > 1:
                    isolate = limit
                    continue
                failures += 1
                if failures < ROW_ATTEMPTS:
                    await asyncio.sleep(0.05 * failures)
                    continue
                log.warning(
                    "import row rejected: could not be stored",
                    extra=log_fields(import_id=import_id, error_type=type(exc).__name__),
                )
                await reject_unstorable_row(self.db, self.settings, import_id, exc)
                outcome = "more"
            failures = 0
            outage = 0.0
            isolate = max(0, isolate - 1)
            if outcome != "more":
                return
            # Live leads first: wait for the live lane to drain (bounded, so a steady
            # stream of live leads slows an import down but never stalls it).
            if self.live is not None:
                await self.live.idle(timeout_s=LIVE_FIRST_MAX_WAIT_S)
            await asyncio.sleep(0)

    async def _watch_leases(self) -> None:
        interval = max(self.settings.import_lease_s / 3, 0.05)
        while not self._stopping:
            try:
                await self._take_over_lapsed()
            except Exception:
                log.exception("import lease check failed; will retry")
            await asyncio.sleep(interval)

    async def _take_over_lapsed(self) -> None:
        now = utcnow()
        async with self.db.sessions() as session:
            lapsed = await ImportRepository(session).lapsed(now)
        for import_id, status in lapsed:
            if status == "processing":
                self.submit(import_id)
                continue
            async with self.db.transaction() as session:
                repo = ImportRepository(session)
                error = "the service stopped while the file was being received; send it again"
                if await repo.fail_if_lapsed(import_id, now, error):
                    await repo.discard(import_id)
                    log.warning("cut-off import failed", extra=log_fields(import_id=import_id))


def _database_unavailable(exc: BaseException) -> bool:
    """A lost connection or a database that is down (as opposed to a row it refuses)."""
    return isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


async def start_import_worker(runtime: ServiceRuntime) -> None:
    worker = ImportWorker(runtime, live=capture_batcher(runtime))
    worker.start()
    runtime.state[_STATE_KEY] = worker


async def stop_import_worker(runtime: ServiceRuntime) -> None:
    worker = runtime.state.pop(_STATE_KEY, None)
    if isinstance(worker, ImportWorker):
        await worker.stop()


def import_worker(runtime: ServiceRuntime) -> ImportWorker:
    worker = runtime.state.get(_STATE_KEY)
    if not isinstance(worker, ImportWorker):
        raise RuntimeError("the import worker runs only inside the service's lifespan")
    return worker
