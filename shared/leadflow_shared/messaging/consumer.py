"""Batch-first idempotent consumer: decode, deduplicate, handle a batch in one transaction,
isolate failures, retry, dead-letter.

All events of one fetched batch are handled in **one** transaction, which also records
every ``(consumer, event_id)`` in ``processed_events`` with one statement (``INSERT … ON
CONFLICT DO NOTHING RETURNING``): an event already recorded is skipped, so a redelivered
batch has no second effect. Offsets are committed only after that transaction commits.

A failing event does not sink its batch: the transaction is rolled back, the events before
the failure are applied again in one transaction, the failing one (or, for a set-based
handler, its run, bisected) is retried alone with exponential backoff and dead-lettered to
``<service>.dlq`` when it keeps failing, and the rest of the batch continues. Handlers may
therefore be called again for the same events in a fresh transaction: they must keep no
in-process state from a transaction that has not committed.

Messages of one partition are handled in order (one lead's events share a partition).
A batch that fails because the database cannot be reached (a connectivity error, and the
database does not answer a ping) is no handler failure: nothing is bisected, retried alone
or dead-lettered. The consumer waits, pinging with backoff, and applies the same events
again once the database answers; offsets stay uncommitted meanwhile (``/readyz`` says
``database: false``). One WARNING per outage, one INFO when it ends.

Events nobody handles — no handler, or refused by the registry's ``wants`` — never open a
transaction. Bulk topics (``leads.imported``) are served after live ones: their partitions
are paused while a live partition has a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, MessageSizeTooLargeError
from prometheus_client import Counter, Histogram
from pydantic import ValidationError
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.db import Database
from leadflow_shared.errors import is_database_unavailable
from leadflow_shared.events import (
    EVENT_MODELS,
    CloudEvent,
    EnvelopeError,
    EventData,
    Topic,
    parse_event_data,
)
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging.tables import MessagingTables
from leadflow_shared.observability import (
    BULK_LANE,
    LANE_HEADER,
    log_fields,
    trace_context,
    use_lane,
)

log = logging.getLogger(__name__)

E = TypeVar("E", bound=EventData)
Handler = Callable[[AsyncSession, CloudEvent, Any], Awaitable[None]]
BatchHandler = Callable[[AsyncSession, Sequence[tuple[CloudEvent, Any]]], Awaitable[None]]
BULK_TOPICS: frozenset[str] = frozenset({Topic.LEADS_IMPORTED.value})
BULK_LANE_BYTES = BULK_LANE.encode()

CONSUMED = Counter(
    "leadflow_events_consumed_total",
    "Events taken from Kafka by outcome",
    ["consumer", "topic", "outcome"],
)
HANDLE_SECONDS = Histogram(
    "leadflow_event_handle_seconds", "Time to handle one event", ["consumer", "type"]
)
BATCH_SECONDS = Histogram(
    "leadflow_consumer_batch_seconds", "Time to handle one fetched batch", ["consumer"]
)
BATCH_SIZE = Histogram(
    "leadflow_consumer_batch_events",
    "Events handled per transaction",
    ["consumer"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
# A dead letter too large to send whole keeps this much of its value (and its size, digest).
DLQ_TRUNCATED_BYTES = 64 * 1024
DEAD_LETTERS = Counter("leadflow_dead_letters_total", "Messages sent to the DLQ", ["consumer"])


DATABASE_OUTAGES = Counter(
    "leadflow_consumer_database_outages_total",
    "Times a consumer paused because its database could not be reached",
    ["consumer"],
)


class PermanentError(Exception):
    """A handler error that retrying cannot fix: the message goes to the DLQ at once."""


class HandlerRegistry:
    """Maps event types to handlers: ``@handlers.on(LeadScored)`` for one event at a time,
    ``@handlers.on_batch(LeadAssigned)`` for set-based work on a run of events.

    ``wants(event_type)``, when given, is asked before any transaction opens: an event it
    refuses is skipped without touching the database (for example webhooks with no
    subscription for that type).
    """

    def __init__(self, wants: Callable[[str], bool] | None = None) -> None:
        self.handlers: dict[str, Handler] = {}
        self.batch_handlers: dict[str, BatchHandler] = {}
        self.wants = wants

    def on(
        self, model: type[E]
    ) -> Callable[
        [Callable[[AsyncSession, CloudEvent, E], Awaitable[None]]],
        Callable[[AsyncSession, CloudEvent, E], Awaitable[None]],
    ]:
        def register(
            fn: Callable[[AsyncSession, CloudEvent, E], Awaitable[None]],
        ) -> Callable[[AsyncSession, CloudEvent, E], Awaitable[None]]:
            self.batch_handlers.pop(model.event_type, None)
            self.handlers[model.event_type] = fn
            return fn

        return register

    def on_batch(
        self, model: type[E]
    ) -> Callable[
        [Callable[[AsyncSession, Sequence[tuple[CloudEvent, E]]], Awaitable[None]]],
        Callable[[AsyncSession, Sequence[tuple[CloudEvent, E]]], Awaitable[None]],
    ]:
        """Register a set-based handler: it gets each run of consecutive events of this
        type in a fetched batch (deduplicated, in order), so order across types holds."""

        def register(
            fn: Callable[[AsyncSession, Sequence[tuple[CloudEvent, E]]], Awaitable[None]],
        ) -> Callable[[AsyncSession, Sequence[tuple[CloudEvent, E]]], Awaitable[None]]:
            self.handlers.pop(model.event_type, None)
            self.batch_handlers[model.event_type] = fn
            return fn

        return register

    async def handle_one(self, session: AsyncSession, event: CloudEvent, data: Any) -> None:
        """Run this event's handler in ``session`` (a set-based one with a run of one):
        for tests and tools that hand events over one at a time."""
        batch_handler = self.batch_handlers.get(event.type)
        if batch_handler is not None:
            await batch_handler(session, [(event, data)])
        else:
            await self.handlers[event.type](session, event, data)

    @property
    def event_types(self) -> set[str]:
        return set(self.handlers) | set(self.batch_handlers)

    def handles(self, event_type: str) -> bool:
        """True when an event of this type must be handled (opens a transaction)."""
        if event_type not in self.handlers and event_type not in self.batch_handlers:
            return False
        return self.wants is None or self.wants(event_type)

    @property
    def topics(self) -> list[str]:
        topics: set[str] = set()
        for event_type in self.event_types:
            model = EVENT_MODELS[event_type]
            topics.add(str(model.topic))
            topics.update(str(t) for t in model.also_on)
        return sorted(topics)


@dataclass(frozen=True)
class Delivered:
    """One decoded event of a batch, with the Kafka message it came in (None in tests)."""

    event: CloudEvent
    data: EventData
    message: ConsumerRecord[bytes, bytes] | None = None


class HandlerFailed(Exception):
    """A handler raised while applying ``items[start:start + length]`` of a batch."""

    def __init__(self, start: int, length: int, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__} in items {start}..{start + length - 1}")
        self.start = start
        self.length = length
        self.error = error


_CLAIMS: dict[tuple[int, str], Any] = {}


def _claim_statement(processed: Table, session: AsyncSession) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING event_id``, built once per table and
    dialect and run as one executemany, so its compiled form is cached (a multi-row VALUES
    clause would be compiled anew for every batch size)."""
    dialect = session.get_bind().dialect.name
    key = (id(processed), dialect)
    statement = _CLAIMS.get(key)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = _CLAIMS[key] = (
            insert(processed).on_conflict_do_nothing().returning(processed.c.event_id)
        )
    return statement


async def apply_in_transaction(
    session: AsyncSession,
    processed: Table,
    consumer: str,
    registry: HandlerRegistry,
    items: Sequence[Delivered],
) -> list[bool]:
    """The idempotent step inside a caller's transaction: record every event id in one
    statement, then run the handlers on the events not seen before, in order.

    Returns, per item, whether it was handled (False: a duplicate, skipped). Raises
    :class:`HandlerFailed` naming the items whose handler raised.
    """
    if not items:
        return []
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        first.setdefault(item.event.id, index)
    now = utcnow()
    rows = [
        {
            "consumer": consumer,
            "event_id": items[index].event.id,
            "event_type": items[index].event.type,
            "processed_at": now,
        }
        for index in first.values()
    ]
    claimed = set(await session.scalars(_claim_statement(processed, session), rows))
    fresh = [
        index
        for index, item in enumerate(items)
        if item.event.id in claimed and first[item.event.id] == index
    ]
    position = 0
    while position < len(fresh):
        index = fresh[position]
        item = items[index]
        batch_handler = registry.batch_handlers.get(item.event.type)
        if batch_handler is not None:
            end = position + 1
            while end < len(fresh) and items[fresh[end]].event.type == item.event.type:
                end += 1
            run = [items[i] for i in fresh[position:end]]
            try:
                await batch_handler(session, [(d.event, d.data) for d in run])
            except Exception as exc:
                raise HandlerFailed(index, fresh[end - 1] - index + 1, exc) from exc
            position = end
            continue
        handler = registry.handlers[item.event.type]
        try:
            with trace_context(item.event.traceparent):
                await handler(session, item.event, item.data)
        except Exception as exc:
            raise HandlerFailed(index, 1, exc) from exc
        position += 1
    handled = set(fresh)
    return [index in handled for index in range(len(items))]


async def apply_batch(
    db: Database,
    processed: Table,
    consumer: str,
    registry: HandlerRegistry,
    items: Sequence[Delivered],
) -> list[bool]:
    """:func:`apply_in_transaction` in a transaction of its own (commits or rolls back)."""
    async with db.transaction() as session:
        return await apply_in_transaction(session, processed, consumer, registry, items)


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
        idle_fetch_max_wait_ms: int | None = None,
        idle_after_s: float = 5.0,
        max_attempts: int = 5,
        retry_base_ms: int = 100,
        max_batch: int = 500,
        bulk_per_batch: int = 100,
        bulk_rate_per_s: float | None = None,
        commit_interval_s: float = 0.2,
        topics: list[str] | None = None,
        bulk_topics: frozenset[str] = BULK_TOPICS,
    ) -> None:
        self.name = name
        self.db = db
        self.processed = tables.processed_events
        self.producer = producer
        self.registry = handlers
        self.dlq_topic = dlq_topic
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_ms / 1000
        self.max_batch = max_batch
        # Bulk-lane events handled per fetched batch at most: the rest waits for the next
        # fetch, so a live event never queues behind more than this many bulk ones.
        self.bulk_per_batch = bulk_per_batch
        # Bulk-topic records admitted per second at most (token bucket; None: no cap). The
        # bulk lane enters the pipeline at this pace, so what it causes downstream (scores,
        # decisions on live topics) never outruns the services after this one.
        self.bulk_rate_per_s = bulk_rate_per_s
        self._bulk_tokens = bulk_rate_per_s or 0.0
        self._bulk_refilled_at = time.monotonic()
        # Offsets are committed at most this often (each commit is a broker round trip; a
        # redelivery after a crash or rebalance is skipped by processed_events).
        self.commit_interval_s = commit_interval_s
        self._uncommitted: dict[TopicPartition, int] = {}
        self._committed_at = 0.0
        self.topics = topics or handlers.topics
        self.bulk_topics = bulk_topics
        # The local broker answers an empty fetch only when the wait expires: a short wait
        # while busy keeps hops fast, a longer one while idle saves CPU.
        self.busy_wait_ms = fetch_max_wait_ms
        self.idle_wait_ms = idle_fetch_max_wait_ms or fetch_max_wait_ms
        self.idle_after_s = idle_after_s
        self.consumer = AIOKafkaConsumer(
            *self.topics,
            bootstrap_servers=bootstrap_servers,
            group_id=name,
            client_id=name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            max_poll_records=max_batch,
        )
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._last_records = time.monotonic()
        self._idle = False
        self._done: list[bool] = []  # per record of the batch in hand: handled or skipped
        self._index_of: dict[int, int] = {}  # id(Delivered) -> its index in that batch
        self.running = False
        # Waits between database pings while it is unreachable (doubling up to the max).
        self.outage_ping_s = 0.25
        self.outage_ping_max_s = 2.0

    async def start(self) -> None:
        await self.consumer.start()
        self.running = True
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Stop fetching, finish the batch in hand, commit, leave the group."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=30)
            except TimeoutError:
                self._task.cancel()
        self.running = False
        await self._commit_offsets(force=True)
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
                batch = await self.consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                self._pace(bool(batch))
                if batch:
                    await self._handle_batch(batch)
                await self._commit_offsets()
                await self._prioritise_live()
            except Exception:
                # e.g. the DLQ write failed because the broker is away: the batch was rewound
                # to its first unhandled message, so nothing is skipped; try again shortly.
                log.exception(
                    "consumer batch failed; retrying", extra=log_fields(consumer=self.name)
                )
                await asyncio.sleep(1)

    def _pace(self, got_records: bool) -> None:
        """Switch the fetch wait between the busy and the idle value."""
        now = time.monotonic()
        if got_records:
            self._last_records = now
        idle = not got_records and now - self._last_records > self.idle_after_s
        if idle != self._idle and self.idle_wait_ms != self.busy_wait_ms:
            self._idle = idle
            # aiokafka reads this attribute for every fetch request it builds.
            fetcher = getattr(self.consumer, "_fetcher", None)
            if fetcher is not None and hasattr(fetcher, "_fetch_max_wait_ms"):
                fetcher._fetch_max_wait_ms = self.idle_wait_ms if idle else self.busy_wait_ms

    async def _prioritise_live(self) -> None:
        """Pause bulk partitions while any live partition has a backlog; resume after."""
        assignment = self.consumer.assignment()
        bulk = [tp for tp in assignment if tp.topic in self.bulk_topics]
        if not bulk:
            return
        backlog = False
        for tp in assignment:
            if tp.topic in self.bulk_topics:
                continue
            highwater = self.consumer.highwater(tp)
            if highwater is not None and highwater > await self.consumer.position(tp):
                backlog = True
                break
        if self.bulk_rate_per_s is not None:
            self._refill_bulk_tokens()
            backlog = backlog or self._bulk_tokens < 1
        paused = self.consumer.paused()
        if backlog:
            self.consumer.pause(*[tp for tp in bulk if tp not in paused])
        elif paused:
            self.consumer.resume(*[tp for tp in bulk if tp in paused])

    async def _handle_batch(
        self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Live events first, then at most ``bulk_per_batch`` bulk-lane events; commit each
        partition's offset up to its first message not done, and rewind to it."""
        started = time.perf_counter()
        ordered = sorted(batch.items(), key=lambda entry: entry[0].topic in self.bulk_topics)
        records = [message for _, messages in ordered for message in messages]
        live, bulk = self._lanes(records)
        self._done = [False] * len(records)
        self._index_of = {}
        try:
            if await self._handle_records(records, live):
                admitted = self._admit_bulk(records, bulk[: self.bulk_per_batch])
                with use_lane(BULK_LANE):
                    await self._handle_records(records, admitted)
        finally:
            self._settle(records)
            BATCH_SECONDS.labels(self.name).observe(time.perf_counter() - started)

    def _lanes(self, records: list[ConsumerRecord[bytes, bytes]]) -> tuple[list[int], list[int]]:
        """Split record indexes into the live and the bulk lane. A record is bulk when it
        comes from a bulk topic or carries ``ce_lane: bulk``; once one of a key's records is
        bulk, that key's later records follow it, so one lead's events keep their order."""
        live: list[int] = []
        bulk: list[int] = []
        bulk_keys: set[bytes | None] = set()
        for index, message in enumerate(records):
            if (
                message.topic in self.bulk_topics
                or message.key in bulk_keys
                or (LANE_HEADER, BULK_LANE_BYTES) in message.headers
            ):
                bulk_keys.add(message.key)
                bulk.append(index)
            else:
                live.append(index)
        return live, bulk

    def _refill_bulk_tokens(self) -> None:
        assert self.bulk_rate_per_s is not None
        now = time.monotonic()
        self._bulk_tokens = min(
            self.bulk_rate_per_s,
            self._bulk_tokens + (now - self._bulk_refilled_at) * self.bulk_rate_per_s,
        )
        self._bulk_refilled_at = now

    def _admit_bulk(
        self, records: list[ConsumerRecord[bytes, bytes]], indexes: list[int]
    ) -> list[int]:
        """The prefix of ``indexes`` the bulk rate allows (records of bulk topics spend one
        token each; bulk-lane records of live topics were paced where they entered)."""
        if self.bulk_rate_per_s is None:
            return indexes
        self._refill_bulk_tokens()
        admitted = 0
        for count, index in enumerate(indexes):
            if records[index].topic in self.bulk_topics:
                if self._bulk_tokens < 1:
                    return indexes[:count]
                self._bulk_tokens -= 1
            admitted = count + 1
        return indexes[:admitted]

    def _settle(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Queue every partition's done prefix for commit; rewind partitions to their first
        message not done (a later one already done is redelivered and skipped as a
        duplicate)."""
        offsets: dict[TopicPartition, int] = {}
        first_left: dict[TopicPartition, int] = {}
        for message, done in zip(records, self._done, strict=True):
            tp = TopicPartition(message.topic, message.partition)
            if tp in first_left:
                continue
            if done:
                offsets[tp] = message.offset + 1
            else:
                first_left[tp] = message.offset
        for tp, offset in first_left.items():
            with contextlib.suppress(IllegalStateError):  # revoked: the new owner resumes
                self.consumer.seek(tp, offset)
        self._uncommitted.update(offsets)

    async def _commit_offsets(self, *, force: bool = False) -> None:
        """Commit the offsets of handled batches, at most every ``commit_interval_s``."""
        if not self._uncommitted:
            return
        now = time.monotonic()
        if not force and now - self._committed_at < self.commit_interval_s:
            return
        offsets, self._uncommitted = self._uncommitted, {}
        self._committed_at = now
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            # A rebalance took the partitions; the new owner redelivers from the last commit
            # and processed_events turns the repeats into no-ops.
            log.warning(
                "offset commit failed",
                extra=log_fields(consumer=self.name, error_type=type(exc).__name__),
            )

    async def _handle_records(
        self, records: list[ConsumerRecord[bytes, bytes]], indexes: list[int]
    ) -> bool:
        """Handle ``records[i]`` for ``i`` in ``indexes``, in order, marking each done;
        False when shutdown interrupted a retry (the rest stays not done)."""
        group: list[Delivered] = []
        # Messages that are not events of the contract are dead-lettered without breaking
        # the batch (nothing of theirs is applied, so the order does not matter); each is
        # done once the broker has acknowledged its dead letter.
        dead: list[tuple[int, asyncio.Future[Any]]] = []
        for index in indexes:
            message = records[index]
            try:
                event = CloudEvent.from_kafka(message.value, message.headers)
                if event.type not in EVENT_MODELS:
                    # Not a type of the contract at all (a typo, a foreign producer): poison.
                    # A contract type this consumer has no handler for is skipped below.
                    raise EnvelopeError(f"unknown event type {event.type!r} (not in the contract)")
                if not self.registry.handles(event.type):
                    CONSUMED.labels(self.name, message.topic, "ignored").inc()
                    self._done[index] = True
                    continue
                data = parse_event_data(event.type, event.data)
            except (EnvelopeError, ValidationError) as exc:
                dead.append((index, await self._send_dead_letter(message, exc, attempts=1)))
                continue
            item = Delivered(event, data, message)
            self._index_of[id(item)] = index
            group.append(item)
            if len(group) >= self.max_batch:
                if await self._apply(group) < len(group):
                    return False
                group = []
        complete = await self._apply(group) == len(group)
        for index, acknowledged in dead:
            await acknowledged
            self._done[index] = True
        return complete

    def _advance(self, item: Delivered) -> None:
        """Record that ``item`` is done."""
        index = self._index_of.get(id(item))
        if index is not None:
            self._done[index] = True

    async def _apply(self, items: list[Delivered]) -> int:
        """Apply ``items`` (one transaction if all goes well); returns how many of them, as a
        prefix, are done (handled, duplicate or dead-lettered). Less than all only when
        shutdown interrupted a retry."""
        if not items:
            return 0
        try:
            outcomes = await self._attempt(items)
        except HandlerFailed as failed:
            start, length = failed.start, failed.length
        except Exception:
            start, length = 0, len(items)  # e.g. the commit failed: find out by halving
        else:
            if outcomes is None:
                return 0  # shutdown while the database was away: all left for redelivery
            BATCH_SIZE.labels(self.name).observe(len(items))
            for item, handled in zip(items, outcomes, strict=True):
                assert item.message is not None
                CONSUMED.labels(
                    self.name, item.message.topic, "handled" if handled else "duplicate"
                ).inc()
            for item in items:
                self._advance(item)
            return len(items)
        if start:
            # The events before the failure were fine: apply them again without it.
            done = await self._apply(items[:start])
            if done < start:
                return done
        bad = items[start : start + length]
        if len(bad) == 1:
            if not await self._apply_alone(bad[0]):
                return start
        else:
            half = len(bad) // 2
            done = await self._apply(bad[:half])
            if done < half:
                return start + done
            done = await self._apply(bad[half:])
            if done < len(bad) - half:
                return start + half + done
        return start + length + await self._apply(items[start + length :])

    async def _attempt(self, items: Sequence[Delivered]) -> list[bool] | None:
        """:func:`apply_batch`; while the database is unreachable, wait until it answers and
        apply the same items again (not counted as an attempt). None when shutdown came
        during the wait; otherwise raises what :func:`apply_batch` raised."""
        while True:
            try:
                return await apply_batch(self.db, self.processed, self.name, self.registry, items)
            except Exception as exc:
                if not await self._database_outage(exc):
                    raise
                if not await self._wait_for_database(exc):
                    return None

    async def _database_outage(self, exc: Exception) -> bool:
        """True when ``exc`` is a connectivity error and the database does not answer a
        ping either (a stale pooled connection with the database up is a normal failure,
        retried with backoff; the pool replaces the connection)."""
        error = exc.error if isinstance(exc, HandlerFailed) else exc
        return is_database_unavailable(error) and not await self._ping()

    async def _ping(self) -> bool:
        try:
            return await asyncio.wait_for(self.db.ping(), timeout=5)
        except TimeoutError:
            return False

    async def _wait_for_database(self, exc: Exception) -> bool:
        """Pause until the database answers a ping; False when shutdown came first."""
        error = exc.error if isinstance(exc, HandlerFailed) else exc
        DATABASE_OUTAGES.labels(self.name).inc()
        log.warning(
            "database unreachable; consumer paused, offsets not committed",
            extra=log_fields(consumer=self.name, error_type=type(error).__name__),
        )
        started = time.monotonic()
        delay = self.outage_ping_s
        while not self._stopping:
            await asyncio.sleep(delay)
            if await self._ping():
                log.info(
                    "database reachable again; consumer resumed",
                    extra=log_fields(
                        consumer=self.name, paused_s=round(time.monotonic() - started, 1)
                    ),
                )
                return True
            delay = min(delay * 2, self.outage_ping_max_s)
        return False

    async def _apply_alone(self, item: Delivered) -> bool:
        """Retry one event with backoff, then dead-letter it; False when shutdown
        interrupted the retries (its offset is then left uncommitted, so it is redelivered)."""
        assert item.message is not None
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                outcomes = await self._attempt([item])
                if outcomes is None:
                    return False
                HANDLE_SECONDS.labels(self.name, item.event.type).observe(
                    time.perf_counter() - started
                )
                outcome = "handled" if outcomes[0] else "duplicate"
                CONSUMED.labels(self.name, item.message.topic, outcome).inc()
                self._advance(item)
                return True
            except Exception as exc:
                error = exc.error if isinstance(exc, HandlerFailed) else exc
                if isinstance(error, PermanentError) or attempt >= self.max_attempts:
                    await self._dead_letter(item.message, error, attempts=attempt)
                    self._advance(item)
                    return True
                if self._stopping:
                    return False
                delay = self.retry_base_s * 2 ** (attempt - 1)
                log.warning(
                    "handler failed; retrying",
                    extra=log_fields(
                        consumer=self.name,
                        event_id=item.event.id,
                        event_type=item.event.type,
                        attempt=attempt,
                        error_type=type(error).__name__,
                        retry_in_s=delay,
                    ),
                )
                await asyncio.sleep(delay)

    async def _dead_letter(
        self, message: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> None:
        # The message in hand is not committed until the DLQ write succeeds.
        await (await self._send_dead_letter(message, error, attempts=attempts))

    async def _send_dead_letter(
        self, message: ConsumerRecord[bytes, bytes], error: BaseException, *, attempts: int
    ) -> asyncio.Future[Any]:
        """Hand ``message`` to the producer for the DLQ; the future resolves with the
        broker's acknowledgement (awaiting it is the caller's business)."""
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
        try:
            future = await self.producer.send(
                self.dlq_topic, message.value, key=message.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # Over the producer's request size with our headers: keep the head of the value
            # and say so (its size and digest), rather than block the partition for ever.
            value = message.value or b""
            headers += [
                ("dlq_truncated", str(len(value)).encode()),
                ("dlq_value_sha256", hashlib.sha256(value).hexdigest().encode()),
            ]
            future = await self.producer.send(
                self.dlq_topic, value[:DLQ_TRUNCATED_BYTES], key=message.key, headers=headers
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
        return future  # type: ignore[no-any-return]
