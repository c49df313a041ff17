"""Transactional outbox and its relay.

A handler adds events with :meth:`Outbox.add` inside the transaction that changes state;
the relay publishes committed rows and marks each sent. The relay is woken by the
database's commit hook, so the happy path has no polling delay; polling is the fallback.
"""

from __future__ import annotations

import asyncio
import logging
import zlib

from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from leadflow_shared.db import Database
from leadflow_shared.events import CloudEvent, EventData
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging.tables import MessagingTables
from leadflow_shared.observability import current_traceparent, log_fields

log = logging.getLogger(__name__)
_OUTBOX_WRITTEN = "leadflow.outbox_written"

PUBLISHED = Counter("leadflow_events_published_total", "Events relayed from the outbox", ["topic"])
RELAY_ERRORS = Counter("leadflow_outbox_relay_errors_total", "Failed relay batches")


class Outbox:
    """Writes events into the outbox table of the current transaction."""

    def __init__(self, tables: MessagingTables, source: str) -> None:
        self.table = tables.outbox
        self.source = source

    async def add(
        self,
        session: AsyncSession,
        data: EventData,
        *,
        subject: str | None = None,
        aggregate_type: str = "lead",
        aggregate_id: str | None = None,
    ) -> CloudEvent:
        """Stage ``data`` as a CloudEvent; it is published only if the transaction commits.

        The Kafka key is always the lead id, so one lead's events stay in order.
        """
        event = CloudEvent(
            id=new_id(),
            type=data.event_type,
            source=self.source,
            subject=subject or data.lead_id,
            data=data.model_dump(mode="json"),
            time=utcnow(),
            traceparent=current_traceparent(),
        )
        await session.execute(
            insert(self.table).values(
                event_id=event.id,
                aggregate_type=aggregate_type,
                aggregate_id=aggregate_id or data.lead_id,
                topic=str(data.topic),
                event_type=event.type,
                key=data.lead_id,
                source=event.source,
                subject=event.subject,
                payload=event.data,
                traceparent=event.traceparent,
                created_at=event.time,
            )
        )
        session.info[_OUTBOX_WRITTEN] = True
        return event


class OutboxRelay:
    """Publishes committed outbox rows in commit order and marks each row sent."""

    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        producer: AIOKafkaProducer,
        *,
        poll_interval_s: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self.db = db
        self.table = tables.outbox
        self.producer = producer
        self.poll_interval_s = poll_interval_s
        self.batch_size = batch_size
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # Only one replica relays at a time (PostgreSQL advisory lock), so one key's
        # events are never reordered by two relays racing.
        self._lock_key = zlib.crc32(f"leadflow-outbox:{db.url}".encode()) & 0x7FFFFFFF
        db.on_commit(self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_OUTBOX_WRITTEN, False):
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Stop after publishing what is committed (graceful shutdown flushes the outbox)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.publish_pending()
        except Exception:
            log.exception("final outbox flush failed; rows stay for the next start")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while await self.publish_pending() == self.batch_size:
                    pass
            except Exception:
                RELAY_ERRORS.inc()
                log.exception("outbox relay batch failed; will retry")
                await asyncio.sleep(min(self.poll_interval_s, 1.0))

    async def publish_pending(self) -> int:
        """Publish one batch of unsent rows; returns how many rows were published."""
        async with self.db.transaction() as session:
            if not self.db.is_sqlite:
                got = await session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key}
                )
                if not got:
                    return 0
            rows = (
                await session.execute(
                    select(self.table)
                    .where(self.table.c.sent_at.is_(None))
                    .order_by(self.table.c.seq)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            futures = []
            for row in rows:
                record = CloudEvent(
                    id=row.event_id,
                    type=row.event_type,
                    source=row.source,
                    subject=row.subject,
                    data=row.payload,
                    time=row.created_at,
                    traceparent=row.traceparent,
                ).to_kafka(key=row.key)
                futures.append(
                    await self.producer.send(
                        row.topic, record.value, key=record.key, headers=record.headers
                    )
                )
            await asyncio.gather(*futures)
            now = utcnow()
            await session.execute(
                update(self.table)
                .where(self.table.c.seq.in_([row.seq for row in rows]))
                .values(sent_at=now)
            )
            for row in rows:
                PUBLISHED.labels(row.topic).inc()
            log.debug("relayed outbox rows", extra=log_fields(count=len(rows)))
            return len(rows)
