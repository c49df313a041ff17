"""Idempotent consumer: decode, deduplicate, handle in one transaction, retry, dead-letter.

Each message is handled in a transaction that also records ``(consumer, event_id)`` in
``processed_events``; offsets are committed only after that transaction commits, so a
redelivered event has no second effect. A message that cannot be parsed, or that keeps
failing after ``max_attempts`` with exponential backoff, is produced to ``<service>.dlq``
with headers naming the original topic, partition, offset, error and attempts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.db import Database
from leadflow_shared.events import CloudEvent, EnvelopeError, EventData, parse_event_data
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging.tables import MessagingTables
from leadflow_shared.observability import log_fields, trace_context

log = logging.getLogger(__name__)

E = TypeVar("E", bound=EventData)
Handler = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]

CONSUMED = Counter(
    "leadflow_events_consumed_total",
    "Events taken from Kafka by outcome",
    ["consumer", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "leadflow_event_handle_seconds", "Time to handle one event", ["consumer", "type"]
)
DEAD_LETTERS = Counter("leadflow_dead_letters_total", "Messages sent to the DLQ", ["consumer"])


class PermanentError(Exception):
    """A handler error that retrying cannot fix: the message goes to the DLQ at once."""


class HandlerRegistry:
    """Maps event types to handlers: ``@handlers.on(LeadScored)``."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {}

    def on(
        self, model: type[E]
    ) -> Callable[
        [Callable[[AsyncSession, CloudEvent, E], Awaitable[None]]],
        Callable[[AsyncSession, CloudEvent, E], Awaitable[None]],
    ]:
        def register(
            fn: Callable[[AsyncSession, CloudEvent, E], Awaitable[None]],
        ) -> Callable[[AsyncSession, CloudEvent, E], Awaitable[None]]:
            self.handlers[model.event_type] = fn
            return fn

        return register

    @property
    def topics(self) -> list[str]:
        from leadflow_shared.events import EVENT_MODELS

        return sorted({str(EVENT_MODELS[t].topic) for t in self.handlers})


class EventConsumer:
    """Runs one consumer-group member over the topics its handlers need."""

    def __init__(
        self,
        *,
        name: str,
        bootstrap_servers: str,
        db: Database,
        tables: MessagingTables,
        producer: AIOKafkaProducer,
        handlers: HandlerRegistry,
        dlq_topic: str,
        fetch_max_wait_ms: int = 500,
        max_attempts: int = 5,
        retry_base_ms: int = 100,
        topics: list[str] | None = None,
    ) -> None:
        self.name = name
        self.db = db
        self.processed = tables.processed_events
        self.producer = producer
        self.handlers = handlers.handlers
        self.dlq_topic = dlq_topic
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_ms / 1000
        self.topics = topics or handlers.topics
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap_servers,
            group_id=name,
            client_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            max_poll_records=200,
        )
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.running = False

    async def start(self) -> None:
        await self.consumer.start()
        self.running = True
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Stop fetching, finish the message in hand, commit, leave the group."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except TimeoutError:
                self._task.cancel()
        self.running = False
        try:
            await self.consumer.stop()
        except asyncio.CancelledError:
            # aiokafka cancels and then awaits its pending fetches when the broker is gone.
            log.warning(
                "consumer stopped without a reachable broker", extra=log_fields(consumer=self.name)
            )

    async def _run(self) -> None:
        while not self._stopping:
            try:
                batch = await self.consumer.getmany(timeout_ms=200)
                await self._handle_batch(batch)
            except Exception:
                # e.g. the DLQ write failed because the broker is away: the batch was rewound
                # to its first unhandled message, so nothing is skipped; try again shortly.
                log.exception(
                    "consumer batch failed; retrying", extra=log_fields(consumer=self.name)
                )
                await asyncio.sleep(1)

    async def _handle_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        done: dict[TopicPartition, int] = {}
        try:
            for tp, messages in batch.items():
                for message in messages:
                    if self._stopping or not await self._process(message):
                        break
                    done[tp] = message.offset + 1
        finally:
            for tp, messages in batch.items():
                next_offset = done.get(tp, messages[0].offset) if messages else None
                if next_offset is not None and next_offset <= messages[-1].offset:
                    # Unhandled messages remain: fetch them again rather than skip them.
                    with contextlib.suppress(IllegalStateError):  # revoked: the new owner resumes
                        self.consumer.seek(tp, next_offset)
            if done:
                # One commit per fetched batch: each commit is a broker round trip.
                try:
                    await self.consumer.commit(done)
                except Exception as exc:
                    # A rebalance took the partitions; the new owner redelivers from the last
                    # commit and processed_events turns the repeats into no-ops.
                    log.warning(
                        "offset commit failed",
                        extra=log_fields(consumer=self.name, error_type=type(exc).__name__),
                    )

    async def _process(self, message: ConsumerRecord[bytes, bytes]) -> bool:
        """Handle or dead-letter one message; False when shutdown interrupted its retries
        (its offset is then left uncommitted, so it is redelivered)."""
        try:
            event = CloudEvent.from_kafka(message.value, message.headers)
        except EnvelopeError as exc:
            await self._dead_letter(message, exc, attempts=1)
            return True
        handler = self.handlers.get(event.type)
        if handler is None:
            CONSUMED.labels(self.name, message.topic, "ignored").inc()
            return True
        try:
            data = parse_event_data(event.type, event.data)
        except ValidationError as exc:
            await self._dead_letter(message, exc, attempts=1)
            return True
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                with trace_context(event.traceparent):
                    outcome = await self._handle_once(handler, event, data)
                HANDLE_SECONDS.labels(self.name, event.type).observe(time.perf_counter() - started)
                CONSUMED.labels(self.name, message.topic, outcome).inc()
                return True
            except PermanentError as exc:
                await self._dead_letter(message, exc, attempts=attempt)
                return True
            except Exception as exc:
                if self._stopping:
                    return False
                if attempt >= self.max_attempts:
                    await self._dead_letter(message, exc, attempts=attempt)
                    return True
                delay = self.retry_base_s * 2 ** (attempt - 1)
                log.warning(
                    "handler failed; retrying",
                    extra=log_fields(
                        consumer=self.name,
                        event_id=event.id,
                        event_type=event.type,
                        attempt=attempt,
                        error_type=type(exc).__name__,
                        retry_in_s=delay,
                    ),
                )
                await asyncio.sleep(delay)

    async def _handle_once(self, handler: Handler, event: CloudEvent, data: EventData) -> str:
        return await handle_idempotently(self.db, self.processed, self.name, handler, event, data)

    async def _dead_letter(
        self, message: ConsumerRecord[bytes, bytes], error: Exception, *, attempts: int
    ) -> None:
        DEAD_LETTERS.labels(self.name).inc()
        CONSUMED.labels(self.name, message.topic, "dead_letter").inc()
        reason = f"{type(error).__name__}: {error}"[:2000]
        headers = [(k, v) for k, v in message.headers if not k.startswith("dlq_")]
        headers += [
            ("dlq_original_topic", message.topic.encode()),
            ("dlq_original_partition", str(message.partition).encode()),
            ("dlq_original_offset", str(message.offset).encode()),
            ("dlq_consumer", self.name.encode()),
            ("dlq_error", reason.encode()),
            ("dlq_attempts", str(attempts).encode()),
            ("dlq_failed_at", utcnow().isoformat().encode()),
        ]
        # The message in hand is not committed until the DLQ write succeeds.
        await self.producer.send_and_wait(
            self.dlq_topic, message.value, key=message.key, headers=headers
        )
        log.error(
            "message dead-lettered",
            extra=log_fields(
                consumer=self.name,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                error_type=type(error).__name__,
                attempts=attempts,
            ),
        )


async def handle_idempotently(
    db: Database,
    processed: Table,
    consumer: str,
    handler: Handler,
    event: CloudEvent,
    data: EventData,
) -> str:
    """Run ``handler`` in its own transaction that also records ``(consumer, event.id)``.

    Returns ``"duplicate"`` (and does nothing) when the event was processed before.
    """
    async with db.transaction() as session:
        return await handle_in_transaction(session, processed, consumer, handler, event, data)


async def handle_in_transaction(
    session: AsyncSession,
    processed: Table,
    consumer: str,
    handler: Handler,
    event: CloudEvent,
    data: EventData,
) -> str:
    """The idempotent step inside a caller's transaction: skip a processed event, else
    record it and run the handler (both commit or roll back with the caller)."""
    seen = await session.scalar(
        select(processed.c.event_id).where(
            processed.c.consumer == consumer, processed.c.event_id == event.id
        )
    )
    if seen is not None:
        return "duplicate"
    await session.execute(
        insert(processed).values(
            consumer=consumer, event_id=event.id, event_type=event.type, processed_at=utcnow()
        )
    )
    await handler(session, event, data)
    return "handled"
