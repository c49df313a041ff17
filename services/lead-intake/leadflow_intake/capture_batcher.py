"""Group commit for live captures: concurrent ``POST /v1/leads`` share one transaction.

Each statement and commit costs far more than the per-lead work inside it, so requests
that arrive while a transaction is being written wait for the next one and go in
together (no linger: a lone request is written at once). Every request still gets its
answer only after its lead is committed. A failing group is retried lead by lead, so one
bad lead never fails its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client import Histogram
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_intake.capture import CaptureResult, LeadVanished, capture_leads
from leadflow_intake.normalise import normalise
from leadflow_intake.repository import LeadRepository
from leadflow_intake.schemas import LeadIn
from leadflow_shared.db import Database
from leadflow_shared.errors import InvalidInput
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import Outbox
from leadflow_shared.observability import current_traceparent
from leadflow_shared.service import ServiceRuntime

log = logging.getLogger(__name__)
_STATE_KEY = "capture_batcher"

GROUP_SIZE = Histogram(
    "leadflow_intake_capture_group_leads",
    "Live captures written per transaction (group commit)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's ``Idempotency-Key`` and the hash of the body it came with."""

    client: str
    key: str
    body_hash: str

    @property
    def id(self) -> tuple[str, str]:
        return (self.client, self.key)


def key_reused(key: str) -> InvalidInput:
    """The 422 for a key already used with another body (contract v2)."""
    return InvalidInput.field(
        "Idempotency-Key",
        f"{key!r} was already used with a different body; "
        "a retry must send the same body, a new lead needs a new key",
    )


@dataclass
class _Pending:
    lead: LeadIn
    idempotency: IdempotencyKey | None
    # The request's trace, for its event: the batcher task runs outside the request.
    traceparent: str | None
    future: asyncio.Future[CaptureResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CaptureBatcher:
    """Writes queued captures in groups of at most ``max_batch``, one transaction each."""

    def __init__(self, db: Database, outbox: Outbox, *, max_batch: int = 200) -> None:
        self.db = db
        self.outbox = outbox
        self.max_batch = max_batch
        self._queue: list[_Pending] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="capture-batcher")

    async def stop(self) -> None:
        """Write what is queued, then stop (later captures are written one by one)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def capture(
        self, lead: LeadIn, *, idempotency: IdempotencyKey | None = None
    ) -> CaptureResult:
        """Capture one lead; returns once it is committed. With ``idempotency`` the answer
        is stored under the key in the same transaction; a key already stored answers
        from the store (its lead is not captured again), or raises the 422 of
        :func:`key_reused` when it came with another body."""
        item = _Pending(lead, idempotency, current_traceparent())
        if self._task is None or self._stopping:
            await self._write([item])
        else:
            self._queue.append(item)
            self._idle.clear()
            self._wake.set()
        return await item.future

    async def idle(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until no live capture is queued or being written:
        the bulk lane calls this between chunks so live leads go first."""
        if not self._idle.is_set():
            try:
                await asyncio.wait_for(self._idle.wait(), timeout=timeout_s)
            except TimeoutError:
                pass

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._idle.clear()
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._write(batch)
            self._idle.set()
            if self._stopping:
                return

    async def _write(self, batch: list[_Pending], *, attempts: int = 3) -> None:
        try:
            async with self.db.transaction() as session:
                results = await self._capture(session, batch)
        except Exception as exc:
            if len(batch) > 1:
                for item in batch:  # isolate the culprit; the others still succeed
                    await self._write([item])
                return
            if isinstance(exc, IntegrityError | LeadVanished) and attempts > 1:
                # A race with another replica or an erasure: a fresh read settles it.
                await self._write(batch, attempts=attempts - 1)
                return
            if not batch[0].future.done():
                batch[0].future.set_exception(exc)
            return
        GROUP_SIZE.observe(len(batch))
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the client may have gone away meanwhile
                continue
            if isinstance(result, Exception):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)

    async def _capture(
        self, session: AsyncSession, batch: list[_Pending]
    ) -> list[CaptureResult | Exception]:
        """Claim the group's idempotency keys first (a key another transaction holds
        waits for it, then answers from the store), capture the rest, store the answers.
        A key repeated inside one group gets the first answer, as if posted in turn."""
        repo = LeadRepository(session)
        first_of: dict[tuple[str, str], int] = {}
        firsts: list[IdempotencyKey] = []
        for index, item in enumerate(batch):
            if item.idempotency is not None and item.idempotency.id not in first_of:
                first_of[item.idempotency.id] = index
                firsts.append(item.idempotency)
        now = utcnow()
        claimed = await repo.claim_keys(
            [
                {
                    "client": k.client,
                    "key": k.key,
                    "body_hash": k.body_hash,
                    "lead_id": "",
                    "status": "pending",
                    "created_at": now,
                }
                for k in firsts
            ]
        )
        stored = await repo.idempotency_records(k for k in first_of if k not in claimed)
        answers: list[CaptureResult | Exception | None] = [None] * len(batch)
        to_capture: list[int] = []
        for index, item in enumerate(batch):
            key = item.idempotency
            if key is None:
                to_capture.append(index)
                continue
            if key.id in stored:  # answered by an earlier (or concurrent) transaction
                record = stored[key.id]
                if record.body_hash is not None and record.body_hash != key.body_hash:
                    answers[index] = key_reused(key.key)
                else:
                    warnings = tuple(normalise(item.lead).warnings)
                    status: Literal["accepted", "merged"] = (
                        "merged" if record.status == "merged" else "accepted"
                    )
                    answers[index] = CaptureResult(record.lead_id, status, warnings)
                continue
            first = batch[first_of[key.id]].idempotency
            assert first is not None
            if key.body_hash != first.body_hash:
                answers[index] = key_reused(key.key)
            elif first_of[key.id] == index:
                to_capture.append(index)
        captured = await capture_leads(
            session,
            self.outbox,
            [batch[i].lead for i in to_capture],
            traceparents=[batch[i].traceparent for i in to_capture],
        )
        for index, result in zip(to_capture, captured, strict=True):
            answers[index] = result
        settled: list[dict[str, str]] = []
        for (client, key_text), index in first_of.items():
            answer = answers[index]
            if (client, key_text) in claimed and isinstance(answer, CaptureResult):
                settled.append(
                    {
                        "client": client,
                        "key": key_text,
                        "lead_id": answer.lead_id,
                        "status": answer.status,
                    }
                )
        await repo.settle_keys(settled)
        # Repeats of a key inside the group: the first occurrence's answer.
        final: list[CaptureResult | Exception] = []
        for index, item in enumerate(batch):
            given = answers[index]
            if given is None and item.idempotency is not None:
                given = answers[first_of[item.idempotency.id]]
                if isinstance(given, Exception):  # one exception object per request
                    given = key_reused(item.idempotency.key)
            assert given is not None
            final.append(given)
        return final


async def start_capture_batcher(runtime: ServiceRuntime) -> None:
    batcher = CaptureBatcher(runtime.db, runtime.outbox)
    batcher.start()
    runtime.state[_STATE_KEY] = batcher


async def stop_capture_batcher(runtime: ServiceRuntime) -> None:
    batcher = runtime.state.pop(_STATE_KEY, None)
    if isinstance(batcher, CaptureBatcher):
        await batcher.stop()


def capture_batcher(runtime: ServiceRuntime) -> CaptureBatcher:
    """The running service's batcher (one per process)."""
    batcher = runtime.state.get(_STATE_KEY)
    if not isinstance(batcher, CaptureBatcher):
        # Outside the lifespan (never in a running service): write each lead alone.
        batcher = CaptureBatcher(runtime.db, runtime.outbox)
    return batcher
