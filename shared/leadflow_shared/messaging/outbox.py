"""Transactional outbox and its relay.

A handler adds events with :meth:`Outbox.add` (or :meth:`Outbox.add_many`) inside the
transaction that changes state. Each event is encoded once, at that moment: the row keeps
what a restarted relay needs, and the session keeps the ready Kafka record. When the
transaction commits, the commit hook hands those records to the relay, which publishes them
at once (no read of the table, no polling delay), waits for the broker's acknowledgement
without holding any transaction, and then marks the rows sent in a short transaction of
its own, coalescing many rows per statement. Rows of a transaction that rolled back are
never published.

The table is the safety net: rows that were committed but not (or not yet known to be)
published — the process stopped, the broker was away, another replica wrote them — are
found by a poll and published in commit-sequence order. A row may therefore be published
twice (for example after a crash between the broker's ack and the mark); consumers
deduplicate by event id.

A broker that keeps its topics in memory (the embedded default) loses every event it held
when it restarts, consumed or not. The launcher gives each broker it starts a new epoch
(``LEADFLOW_BROKER_EPOCH``); a relay that meets a new epoch marks unsent again every row it
sent since the previous epoch began, and the table poll republishes them in sequence order
(:meth:`OutboxRelay.adopt_broker_epoch`). Sent rows are kept long enough for that
(``outbox_retention_hours``), processed ids far longer, so consumers skip what they had.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from leadflow_shared import failpoints
from leadflow_shared.db import Database
from leadflow_shared.events import CloudEvent, EventData, KafkaRecord
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging.tables import MessagingTables
from leadflow_shared.observability import current_lane, current_traceparent, log_fields

log = logging.getLogger(__name__)
# session.info key: the records staged by the session's current transaction.
_STAGED = "leadflow.outbox_staged"

PUBLISHED = Counter("leadflow_events_published_total", "Events relayed from the outbox", ["topic"])
RELAY_ERRORS = Counter("leadflow_outbox_relay_errors_total", "Failed relay batches")


@dataclass(frozen=True)
class StagedRecord:
    """An outbox row's event, already encoded for Kafka."""

    event_id: str
    topic: str
    record: KafkaRecord


class Outbox:
    """Writes events into the outbox table of the current transaction."""

    def __init__(self, tables: MessagingTables, source: str) -> None:
        self.table = tables.outbox
        self.source = source
        self._insert = insert(self.table)  # built once: the compiled form is cached

    def _stage(
        self,
        session: AsyncSession,
        data: EventData,
        *,
        topic: str | None,
        subject: str | None,
        aggregate_type: str,
        aggregate_id: str | None,
        traceparent: str | None,
    ) -> tuple[CloudEvent, dict[str, Any]]:
        event = CloudEvent(
            id=new_id(),
            type=data.event_type,
            source=self.source,
            subject=subject or data.lead_id,
            data=data.model_dump(mode="json"),
            time=utcnow(),
            traceparent=traceparent,
            lane=current_lane(),
        )
        topic = topic or str(data.topic)
        row = {
            "event_id": event.id,
            "aggregate_type": aggregate_type,
            "aggregate_id": aggregate_id or data.lead_id,
            "topic": topic,
            "event_type": event.type,
            "key": data.lead_id,
            "source": event.source,
            "subject": event.subject,
            "payload": event.data,
            "traceparent": event.traceparent,
            "lane": event.lane,
            "created_at": event.time,
        }
        staged: list[StagedRecord] = session.info.setdefault(_STAGED, [])
        staged.append(StagedRecord(event.id, topic, event.to_kafka(key=data.lead_id)))
        return event, row

    async def add(
        self,
        session: AsyncSession,
        data: EventData,
        *,
        topic: str | None = None,
        subject: str | None = None,
        aggregate_type: str = "lead",
        aggregate_id: str | None = None,
    ) -> CloudEvent:
        """Stage ``data`` as a CloudEvent; it is published only if the transaction commits.

        The Kafka key is always the lead id, so one lead's events stay in order. ``topic``
        overrides the event type's own topic (the bulk lane publishes on ``leads.imported``).
        """
        event, row = self._stage(
            session,
            data,
            topic=topic,
            subject=subject,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            traceparent=current_traceparent(),
        )
        await session.execute(self._insert, [row])
        return event

    async def add_many(
        self,
        session: AsyncSession,
        items: Sequence[EventData],
        *,
        topic: str | None = None,
        traceparents: Sequence[str | None] | None = None,
    ) -> list[CloudEvent]:
        """Stage several events with one multi-row insert (in the given order).

        ``traceparents`` gives each event its own trace (a set-based handler passes
        ``child_traceparent(cause.traceparent)`` per event, a group commit each request's);
        by default every event gets the current one.
        """
        if not items:
            return []
        if traceparents is None:
            traceparents = [current_traceparent()] * len(items)
        staged = [
            self._stage(
                session,
                data,
                topic=topic,
                subject=None,
                aggregate_type="lead",
                aggregate_id=None,
                traceparent=traceparent,
            )
            for data, traceparent in zip(items, traceparents, strict=True)
        ]
        await session.execute(self._insert, [row for _, row in staged])
        return [event for event, _ in staged]


class OutboxRelay:
    """Publishes committed events: at once from the commit hook, by polling as a fallback.

    One relay per process. Published rows are marked sent in coalesced short transactions
    (at most ``mark_interval_s`` late); the poll skips rows this relay has in hand, and rows
    younger than ``poll_grace_s`` (another replica's relay is publishing those).
    """

    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        producer: AIOKafkaProducer,
        *,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
        poll_grace_s: float = 10.0,
        mark_interval_s: float = 0.05,
        linger_s: float = 0.001,
    ) -> None:
        self.db = db
        self.table = tables.outbox
        self.epochs = tables.broker_epochs
        self.producer = producer
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self.poll_grace_s = poll_grace_s
        self.mark_interval_s = mark_interval_s
        self.linger_s = linger_s
        self._queue: deque[StagedRecord] = deque()
        self._in_hand: set[str] = set()  # queued, in flight, or sent but not yet marked
        self._unmarked: list[str] = []
        self._unmarked_since = 0.0
        # After a failed send the queue may be out of order: publish from the table (in
        # sequence order) until it is drained, then return to the fast path.
        self._degraded = True  # start with a full poll: rows left by an earlier run
        self._committed_while_degraded = False
        self._wake = asyncio.Event()
        self._failures = 0  # consecutive failed rounds (logged sparingly)
        self._failure_logged_at = 0.0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Only one replica polls at a time (PostgreSQL advisory lock), so the fallback
        # does not publish one key's rows from two relays at once.
        self._lock_key = zlib.crc32(f"leadflow-outbox:{db.url}".encode()) & 0x7FFFFFFF
        db.on_commit(self._after_commit)
        db.on_rollback(_discard_staged)

    def _after_commit(self, session: Session) -> None:
        staged: list[StagedRecord] | None = session.info.pop(_STAGED, None)
        if not staged:
            return
        failpoints.hit("outbox.after_commit")
        if self._degraded:
            self._committed_while_degraded = True  # the poll under way may miss it
        else:
            self._queue.extend(staged)
            self._in_hand.update(s.event_id for s in staged)
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    async def unsent(self) -> int:
        """Committed outbox rows not yet marked sent (every replica's)."""
        async with self.db.read() as session:
            count = await session.scalar(
                select(func.count()).select_from(self.table).where(self.table.c.sent_at.is_(None))
            )
        return int(count or 0)

    async def adopt_broker_epoch(self, epoch: str, *, clock_margin_s: float = 60) -> int | None:
        """Note that this database now publishes to broker ``epoch``; call before
        :meth:`start`. If the epoch is new, every row sent since the previous epoch began
        (less ``clock_margin_s`` for clocks of other replicas) — or every retained sent row if
        no epoch was recorded before — is marked unsent in the same transaction, so the poll
        republishes it; returns how many, or None when the epoch was known already (a
        restart of this service against the same broker). Replicas race safely: one records
        the epoch, the others find it."""
        t = self.epochs
        try:
            async with self.db.transaction() as session:
                if await session.scalar(select(t.c.epoch).where(t.c.epoch == epoch)):
                    return None
                previous = await session.scalar(select(func.max(t.c.first_seen_at)))
                now = utcnow()
                resend = update(self.table).where(self.table.c.sent_at.is_not(None))
                if previous is not None:
                    since = previous - timedelta(seconds=clock_margin_s)
                    resend = resend.where(self.table.c.sent_at >= since)
                result = await session.execute(resend.values(sent_at=None))
                count = int(getattr(result, "rowcount", 0) or 0)
                await session.execute(
                    insert(t).values(epoch=epoch, first_seen_at=now, republished=count)
                )
        except IntegrityError:
            return None  # another replica recorded it (and marked the rows) first
        self._degraded = True
        log.info(
            "new broker epoch: outbox rows sent to the previous broker will be republished",
            extra=log_fields(epoch=epoch, rows=count),
        )
        return count

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop after publishing what is committed (graceful shutdown flushes the outbox)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.flush()
        except Exception:
            log.exception("final outbox flush failed; rows stay for the next start")

    async def flush(self) -> None:
        """Publish everything committed so far, including rows found by a full poll."""
        while self._queue:
            await self._publish_queued()
        await self._mark_sent()  # rows in hand would hide the rows behind them from the poll
        self._degraded = True
        while await self.publish_pending() == self.batch_size:
            pass
        await self._mark_sent()

    async def _run(self) -> None:
        next_poll = 0.0
        while not self._stopping:
            timeout = max(0.0, next_poll - time.monotonic())
            if self._unmarked:
                timeout = min(timeout, self.mark_interval_s)
            if not self._queue:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
                except TimeoutError:
                    pass
            self._wake.clear()
            try:
                if self._queue and len(self._queue) < self.batch_size and self.linger_s:
                    await asyncio.sleep(self.linger_s)  # let a burst's commits join one batch
                await self._publish_queued()
                if self._unmarked and (
                    time.monotonic() - self._unmarked_since >= self.mark_interval_s
                    or len(self._unmarked) >= self.batch_size
                ):
                    await self._mark_sent()
                if self._degraded or time.monotonic() >= next_poll:
                    while await self.publish_pending() == self.batch_size:
                        pass
                    next_poll = time.monotonic() + self.poll_interval_s
                if self._failures:
                    log.info("outbox relay recovered", extra=log_fields(failures=self._failures))
                    self._failures = 0
            except Exception as exc:
                RELAY_ERRORS.inc()
                self._log_failure(exc)
                self._fall_back_to_table()
                next_poll = time.monotonic() + min(self.poll_interval_s, 1.0)
                await asyncio.sleep(0.2)

    def _log_failure(self, exc: Exception) -> None:
        """The first failure of a run of them with its traceback, then one line per 30 s
        (a broker or database outage would otherwise log every retry)."""
        now = time.monotonic()
        self._failures += 1
        if self._failures == 1:
            log.exception("outbox relay batch failed; will retry")
            self._failure_logged_at = now
        elif now - self._failure_logged_at >= 30:
            log.warning(
                "outbox relay still failing; will retry",
                extra=log_fields(failures=self._failures, error_type=type(exc).__name__),
            )
            self._failure_logged_at = now

    def _fall_back_to_table(self) -> None:
        # What was queued is in the table: publish it from there, in sequence order.
        for staged in self._queue:
            self._in_hand.discard(staged.event_id)
        self._queue.clear()
        self._degraded = True

    async def _publish_queued(self) -> None:
        if not self._queue:
            return
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.batch_size))]
        try:
            await self._send([(s.topic, s.record) for s in batch])
        except BaseException:
            for staged in batch:
                self._in_hand.discard(staged.event_id)
            raise
        self._note_sent([s.event_id for s in batch])
        for staged in batch:
            PUBLISHED.labels(staged.topic).inc()

    async def _send(self, records: list[tuple[str, KafkaRecord]]) -> None:
        futures = [
            await self.producer.send(topic, r.value, key=r.key, headers=r.headers)
            for topic, r in records
        ]
        await asyncio.gather(*futures)
        failpoints.hit("outbox.after_send")

    def _note_sent(self, event_ids: list[str]) -> None:
        if not self._unmarked:
            self._unmarked_since = time.monotonic()
        self._unmarked.extend(event_ids)

    async def _mark_sent(self) -> None:
        """Mark published rows sent, in one short transaction per ``batch_size`` rows."""
        while self._unmarked:
            chunk = self._unmarked[: self.batch_size]
            async with self.db.transaction() as session:
                await session.execute(
                    update(self.table)
                    .where(self.table.c.event_id.in_(chunk))
                    .values(sent_at=utcnow())
                )
            del self._unmarked[: len(chunk)]
            self._in_hand.difference_update(chunk)
        log.debug("marked outbox rows sent")

    async def publish_pending(self) -> int:
        """Publish one batch of committed, unsent rows found in the table, in sequence
        order; returns how many rows were read (``batch_size`` means: there may be more),
        or 0 when every row read is already in this relay's hands (the fast path owns
        them; reading again would find the same rows)."""
        self._committed_while_degraded = False
        async with self.db.read() as session:
            if not self.db.is_sqlite:
                got = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key}
                )
                if not got:
                    return 0
            query = (
                select(self.table)
                .where(self.table.c.sent_at.is_(None))
                .order_by(self.table.c.seq)
                .limit(self.batch_size)
            )
            if not self._degraded:
                query = query.where(
                    self.table.c.created_at < utcnow() - timedelta(seconds=self.poll_grace_s)
                )
            rows = (await session.execute(query)).all()
        fresh = [row for row in rows if row.event_id not in self._in_hand]
        if fresh:
            records = [
                (
                    row.topic,
                    CloudEvent(
                        id=row.event_id,
                        type=row.event_type,
                        source=row.source,
                        subject=row.subject,
                        data=row.payload,
                        time=row.created_at,
                        traceparent=row.traceparent,
                        lane=row.lane,
                    ).to_kafka(key=row.key),
                )
                for row in fresh
            ]
            self._in_hand.update(row.event_id for row in fresh)
            try:
                await self._send(records)
            except BaseException:
                self._in_hand.difference_update(row.event_id for row in fresh)
                raise
            self._note_sent([row.event_id for row in fresh])
            for row in fresh:
                PUBLISHED.labels(row.topic).inc()
            await self._mark_sent()
            log.debug("relayed outbox rows from the table", extra=log_fields(count=len(fresh)))
        if len(rows) < self.batch_size and not self._committed_while_degraded:
            self._degraded = False  # the table is drained: back to the fast path
        return len(rows) if fresh else 0


def _discard_staged(session: Session) -> None:
    session.info.pop(_STAGED, None)
