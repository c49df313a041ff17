"""The outbox relay and the idempotent consumer against a real broker and database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.broker import EmbeddedBroker
from leadflow_shared.db import Database
from leadflow_shared.events import (
    CloudEvent,
    EngagementRecorded,
    EventData,
    KafkaRecord,
    LeadAssigned,
    LeadCaptured,
    LeadErased,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import (
    EventConsumer,
    HandlerRegistry,
    Outbox,
    OutboxRelay,
    PermanentError,
    create_topics,
    define_messaging_tables,
    new_producer,
)
from leadflow_shared.messaging.consumer import Delivered, apply_batch
from leadflow_shared.messaging.dlq import replay_dead_letters
from leadflow_shared.observability import current_lane, use_lane

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = define_messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("lead_id", String(64)),
)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def _read(bootstrap: str, topic: str, want: int, timeout_s: float = 10) -> list[CloudEvent]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"reader-{new_id()}",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    out: list[CloudEvent] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(CloudEvent.from_kafka(m.value, m.headers) for m in messages)
    finally:
        await consumer.stop()
    return out


async def test_outbox_publishes_committed_events_only_and_without_polling_delay(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic = "privacy.erasure"
    await create_topics(broker.bootstrap_servers, [topic], partitions=2)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    # An hour-long poll interval: after the start-up poll, only the commit hook can make the
    # relay publish before the (generous) wait below runs out.
    relay = OutboxRelay(db, tables, producer, poll_interval_s=3600)
    relay.start()
    outbox = Outbox(tables, "leadflow/test")
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as session:
                await outbox.add(session, LeadErased(lead_id="rolled-back", erased_at=utcnow()))
                raise RuntimeError("the state change failed")

        async def pending() -> int | None:
            async with db.transaction() as session:
                return await session.scalar(
                    select(func.count()).where(tables.outbox.c.sent_at.is_(None))
                )

        # Wait for the start-up poll (it drains the table and leaves the degraded mode, in
        # which a commit wakes a table poll): from then on the relay idles until its next
        # poll, an hour away, and only the commit hook can publish a new row.
        for _ in range(6000):  # up to a minute: a bound for failure, not a timing claim
            if not relay._degraded:
                break
            await asyncio.sleep(0.01)
        assert not relay._degraded
        async with db.transaction() as session:
            await outbox.add(session, LeadErased(lead_id="committed", erased_at=utcnow()))
        for _ in range(6000):  # the poll is an hour away: only the hook can get there
            if not await pending():
                break
            await asyncio.sleep(0.01)
        assert await pending() == 0, "relay waited for its poll instead of the commit"
        events = await _read(broker.bootstrap_servers, topic, want=1)
        assert [e.lead_id for e in events] == ["committed"]
    finally:
        await relay.stop()
        await producer.stop()


async def test_consumer_retries_dead_letters_and_deduplicates(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic, dlq = "leads.engagement", "test-svc.dlq"
    await create_topics(broker.bootstrap_servers, [topic, dlq], partitions=2)
    calls: dict[str, int] = {}
    last_seen = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(EngagementRecorded)
    async def record(session: AsyncSession, event: CloudEvent, data: EngagementRecorded) -> None:
        calls[data.engagement_id] = calls.get(data.engagement_id, 0) + 1
        if data.engagement_id == "last":
            last_seen.set()
        if data.engagement_id == "flaky" and calls["flaky"] < 3:
            raise ConnectionError("transient")
        if data.engagement_id == "poison":
            raise PermanentError("cannot ever handle this")
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    consumer = EventConsumer(
        name="test-svc",
        bootstrap_servers=broker.bootstrap_servers,
        db=db,
        tables=tables,
        producer=producer,
        handlers=handlers,
        dlq_topic=dlq,
        fetch_max_wait_ms=10,
        retry_base_ms=10,
    )

    def engagement(engagement_id: str) -> CloudEvent:
        data = EngagementRecorded(
            lead_id="lead-1", engagement_id=engagement_id, type="page_view", occurred_at=utcnow()
        )
        return CloudEvent(
            type=data.event_type, source="t", subject="lead-1", data=data.model_dump(mode="json")
        )

    ok, flaky, poison = engagement("ok"), engagement("flaky"), engagement("poison")
    raw: AIOKafkaProducer = producer
    for event in (ok, ok, flaky, poison):  # "ok" twice: a redelivery
        r = event.to_kafka()
        await raw.send_and_wait(topic, r.value, key=r.key, headers=r.headers)
    await raw.send_and_wait(topic, b"garbage", key=b"lead-1", headers=[])
    last = engagement("last")
    r = last.to_kafka()
    await raw.send_and_wait(topic, r.value, key=r.key, headers=r.headers)

    await consumer.start()
    try:
        await asyncio.wait_for(last_seen.wait(), timeout=20)
    finally:
        await consumer.stop()
        await producer.stop()
    # A batch's handlers may run again after a rollback; what counts is the effects.
    assert calls["flaky"] >= 3
    async with db.transaction() as session:
        done = set(await session.scalars(select(effects.c.event_id)))
    assert done == {ok.id, flaky.id, last.id}
    letters = await _read_raw(broker.bootstrap_servers, dlq, want=2)
    by_error = {h["dlq_error"].split(":")[0]: h for h in letters}
    assert set(by_error) == {"PermanentError", "EnvelopeError"}
    assert by_error["EnvelopeError"]["dlq_original_topic"] == topic
    assert by_error["PermanentError"]["dlq_attempts"] == "1"


async def _read_raw(bootstrap: str, topic: str, want: int) -> list[dict[str, str]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"reader-{new_id()}",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    out: list[dict[str, str]] = []
    try:
        deadline = time.monotonic() + 10
        while len(out) < want and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                out.extend({k: v.decode() for k, v in m.headers} for m in messages)
    finally:
        await consumer.stop()
    return out


async def test_dead_letters_replay_to_their_topic_once(broker: EmbeddedBroker) -> None:
    original, dlq = "replay.original", "replay-svc.dlq"
    await create_topics(broker.bootstrap_servers, [original, dlq], partitions=2)
    event = CloudEvent(
        type="lead.erased",
        source="t",
        subject="lead-9",
        data={"lead_id": "lead-9", "erased_at": utcnow().isoformat()},
    )
    record = event.to_kafka()
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    try:
        await producer.send_and_wait(
            dlq,
            record.value,
            key=record.key,
            headers=[
                *record.headers,
                ("dlq_original_topic", original.encode()),
                ("dlq_error", b"ConnectionError: db down"),
                ("dlq_attempts", b"5"),
            ],
        )
        await producer.send_and_wait(dlq, b"x", key=b"k", headers=[("dlq_error", b"?")])
    finally:
        await producer.stop()
    first = await replay_dead_letters(broker.bootstrap_servers, dlq)
    assert (first.replayed, first.skipped) == (1, 1)
    second = await replay_dead_letters(broker.bootstrap_servers, dlq)
    assert (second.replayed, second.skipped) == (0, 0)
    (replayed,) = await _read(broker.bootstrap_servers, original, want=1)
    assert replayed == event
    (raw,) = await _read_raw(broker.bootstrap_servers, original, want=1)
    assert not any(name.startswith("dlq_") for name in raw)


async def test_a_batch_that_fails_midway_is_rewound_not_skipped(
    broker: EmbeddedBroker, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic, dlq = "rewind.topic", "rewind-svc.dlq"
    await create_topics(broker.bootstrap_servers, [topic, dlq], partitions=1)
    after = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        if data.lead_id == "poison":
            raise PermanentError("never")
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))
        if data.lead_id == "after":
            after.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    consumer = _consumer(broker, db, producer, handlers, "rewind-svc", topic)
    real_dead_letter = consumer._dead_letter
    failures = iter([RuntimeError("broker away")])

    async def flaky_dead_letter(*args: object, **kwargs: object) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        await real_dead_letter(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(consumer, "_dead_letter", flaky_dead_letter)
    await _produce_erasures(producer, topic, ["before", "poison", "after"])
    await consumer.start()
    try:
        await asyncio.wait_for(after.wait(), timeout=20)
    finally:
        await consumer.stop()
        await producer.stop()
    # "before" took effect once (kept when the batch was rewound), "poison" reached the DLQ
    # once its write succeeded, "after" was not skipped.
    assert await _effects(db) == ["after", "before"]
    letters = await _read_raw(broker.bootstrap_servers, dlq, want=1)
    assert [h["ce_subject"] for h in letters] == ["poison"]


def _consumer(
    broker: EmbeddedBroker,
    db: Database,
    producer: AIOKafkaProducer,
    handlers: HandlerRegistry,
    name: str,
    topic: str | None,
    **options: Any,
) -> EventConsumer:
    """A consumer of ``topic`` (None: the registry's topics) with short waits."""
    return EventConsumer(
        name=name,
        bootstrap_servers=broker.bootstrap_servers,
        db=db,
        tables=tables,
        producer=producer,
        handlers=handlers,
        dlq_topic=f"{name}.dlq",
        fetch_max_wait_ms=10,
        retry_base_ms=10,
        topics=[topic] if topic else None,
        **options,
    )


async def _produce_captures(
    producer: AIOKafkaProducer, topic: str, prefix: str, count: int
) -> None:
    futures = []
    for i in range(count):
        data = LeadCaptured(
            lead_id=f"{prefix}-{i:03d}", email=f"{prefix}{i}@example.com", captured_at=utcnow()
        )
        r = CloudEvent(
            type=data.event_type,
            source="t",
            subject=data.lead_id,
            data=data.model_dump(mode="json"),
        ).to_kafka()
        futures.append(await producer.send(topic, r.value, key=r.key, headers=r.headers))
    await asyncio.gather(*futures)


async def _produce_erasures(producer: AIOKafkaProducer, topic: str, lead_ids: list[str]) -> None:
    futures = []
    for lead_id in lead_ids:
        r = CloudEvent(
            type="lead.erased",
            source="t",
            subject=lead_id,
            data={"lead_id": lead_id, "erased_at": utcnow().isoformat()},
        ).to_kafka()
        futures.append(await producer.send(topic, r.value, key=b"one-key", headers=r.headers))
    await asyncio.gather(*futures)


async def _effects(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(effects.c.lead_id).order_by(effects.c.lead_id)))


async def test_one_poison_message_among_a_hundred_is_isolated_in_its_batch(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic, name = "poison.topic", "poison-svc"
    await create_topics(broker.bootstrap_servers, [topic, f"{name}.dlq"], partitions=1)
    done = asyncio.Event()
    transactions = 0
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        if data.lead_id == "lead-042":
            raise ValueError("a bug this event triggers every time")
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))
        if data.lead_id == "lead-099":
            done.set()

    def count_commits(session: object) -> None:
        nonlocal transactions
        transactions += 1

    db.on_commit(count_commits)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    lead_ids = [f"lead-{i:03d}" for i in range(100)]
    await _produce_erasures(producer, topic, lead_ids)
    consumer = _consumer(broker, db, producer, handlers, name, topic)
    await consumer.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await consumer.stop()
        await producer.stop()
    assert await _effects(db) == [i for i in lead_ids if i != "lead-042"]
    letters = await _read_raw(broker.bootstrap_servers, f"{name}.dlq", want=1)
    assert [(h["ce_subject"], h["dlq_attempts"]) for h in letters] == [("lead-042", "5")]
    assert letters[0]["dlq_error"].startswith("ValueError")
    # One fetched batch: the 42 before it in one transaction, the 57 after in another (plus
    # at most a few more if the broker split the fetch) — not one transaction per message.
    assert transactions <= 6


async def test_a_redelivered_batch_has_no_second_effect(db: Database) -> None:
    handlers = HandlerRegistry()
    calls: list[str] = []

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        calls.append(data.lead_id)
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))

    batch = [_delivered(f"lead-{i}") for i in range(20)]
    first = await apply_batch(db, tables.processed_events, "svc", handlers, batch)
    again = await apply_batch(db, tables.processed_events, "svc", handlers, [*batch, batch[0]])
    assert first == [True] * 20
    assert again == [False] * 21
    assert len(calls) == 20
    assert len(await _effects(db)) == 20


def _delivered(lead_id: str, model: type[EventData] = LeadErased) -> Delivered:
    data = (
        LeadErased(lead_id=lead_id, erased_at=utcnow())
        if model is LeadErased
        else LeadAssigned(
            lead_id=lead_id,
            role="sdr",
            owner=f"rep-{lead_id}",
            rule="r",
            strategy="round_robin",
            reason="test",
        )
    )
    event = CloudEvent(
        type=data.event_type, source="t", subject=lead_id, data=data.model_dump(mode="json")
    )
    return Delivered(event, data)


async def test_set_based_handlers_get_runs_of_their_type_in_order(db: Database) -> None:
    handlers = HandlerRegistry()
    seen: list[tuple[str, list[str]]] = []

    @handlers.on_batch(LeadAssigned)
    async def assigned(
        session: AsyncSession, items: Sequence[tuple[CloudEvent, LeadAssigned]]
    ) -> None:
        seen.append(("assigned", [data.lead_id for _, data in items]))

    @handlers.on(LeadErased)
    async def erased(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        seen.append(("erased", [data.lead_id]))

    a1, a2, e3, a4 = (
        _delivered("1", LeadAssigned),
        _delivered("2", LeadAssigned),
        _delivered("3"),
        _delivered("4", LeadAssigned),
    )
    await apply_batch(db, tables.processed_events, "svc", handlers, [a1, a2, a1, e3, a4])
    assert seen == [("assigned", ["1", "2"]), ("erased", ["3"]), ("assigned", ["4"])]


async def test_events_the_registry_does_not_want_open_no_transaction() -> None:
    wanted: set[str] = set()
    handlers = HandlerRegistry(wants=lambda event_type: event_type in wanted)

    @handlers.on(LeadErased)
    async def erased(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        pass

    assert not handlers.handles("lead.erased")
    assert not handlers.handles("lead.scored")  # no handler at all
    wanted.add("lead.erased")
    assert handlers.handles("lead.erased")
    assert handlers.topics == ["privacy.erasure"]


def test_capture_handlers_also_read_the_bulk_lane() -> None:
    handlers = HandlerRegistry()

    @handlers.on(LeadCaptured)
    async def captured(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
        pass

    assert handlers.topics == ["leads.captured", "leads.imported"]


async def test_outbox_add_many_and_topic_override_publish_in_order(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic = "leads.imported"
    await create_topics(broker.bootstrap_servers, [topic], partitions=1)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(db, tables, producer, poll_interval_s=30)
    relay.start()
    outbox = Outbox(tables, "leadflow/test")
    profiles = [
        LeadCaptured(lead_id=f"imp-{i}", email=f"p{i}@example.com", captured_at=utcnow())
        for i in range(50)
    ]
    try:
        async with db.transaction() as session:
            await outbox.add_many(session, profiles, topic=topic)
        events = await _read(broker.bootstrap_servers, topic, want=50)
    finally:
        await relay.stop()
        await producer.stop()
    assert [e.lead_id for e in events] == [p.lead_id for p in profiles]


async def test_relay_falls_back_to_the_table_when_a_send_fails(
    broker: EmbeddedBroker, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = "relay.fallback"
    await create_topics(broker.bootstrap_servers, [topic], partitions=1)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(db, tables, producer, poll_interval_s=0.2)
    real_send = relay._send
    failures = iter([ConnectionError("broker away")])

    async def flaky_send(records: list[tuple[str, KafkaRecord]]) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        await real_send(records)

    monkeypatch.setattr(relay, "_send", flaky_send)
    relay.start()
    outbox = Outbox(tables, "leadflow/test")
    try:
        await asyncio.sleep(0.3)  # the start-up poll found nothing: fast path from here
        for lead_id in ("first", "second", "third"):
            with use_lane("bulk" if lead_id == "second" else None):
                async with db.transaction() as session:
                    await outbox.add(
                        session, LeadErased(lead_id=lead_id, erased_at=utcnow()), topic=topic
                    )
        events = await _read(broker.bootstrap_servers, topic, want=3)
    finally:
        await relay.stop()
        await producer.stop()
    assert [e.lead_id for e in events] == ["first", "second", "third"]
    # republished from the table, the events keep their lane
    assert [e.lane for e in events] == [None, "bulk", None]


async def test_stopping_the_relay_flushes_what_is_committed(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic = "privacy.erasure"
    await create_topics(broker.bootstrap_servers, [topic], partitions=2)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    # Never started: only the shutdown flush can publish the row.
    relay = OutboxRelay(db, tables, producer, poll_interval_s=30)
    async with db.transaction() as session:
        await Outbox(tables, "leadflow/test").add(
            session, LeadErased(lead_id="flushed-on-stop", erased_at=utcnow())
        )
    await relay.stop()
    await producer.stop()
    async with db.transaction() as session:
        pending = await session.scalar(
            select(func.count()).where(tables.outbox.c.sent_at.is_(None))
        )
    assert pending == 0
    events = await _read(broker.bootstrap_servers, topic, want=2)
    assert "flushed-on-stop" in {e.lead_id for e in events}


async def test_live_events_are_served_before_a_bulk_backlog(
    broker: EmbeddedBroker, db: Database
) -> None:
    live, bulk, name = "leads.captured", "leads.imported", "priority-svc"
    await create_topics(broker.bootstrap_servers, [live, bulk, f"{name}.dlq"], partitions=1)
    order: list[str] = []
    bulk_under_way, all_done = asyncio.Event(), asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadCaptured)
    async def captured(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
        order.append(data.lead_id)
        await asyncio.sleep(0.005)  # bulk work that takes a while: ~2 s for the backlog
        if len(order) >= 40:
            bulk_under_way.set()
        if len(order) >= 420:
            all_done.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()

    await _produce_captures(producer, bulk, "bulk", 400)
    consumer = _consumer(broker, db, producer, handlers, name, None, max_batch=20)
    assert consumer.topics == [live, bulk]
    await consumer.start()
    try:
        await asyncio.wait_for(bulk_under_way.wait(), timeout=30)
        await _produce_captures(producer, live, "live", 20)
        await asyncio.wait_for(all_done.wait(), timeout=30)
    finally:
        await consumer.stop()
        await producer.stop()
    last_live = max(i for i, lead_id in enumerate(order) if lead_id.startswith("live"))
    first_live = min(i for i, lead_id in enumerate(order) if lead_id.startswith("live"))
    print("live events handled at positions", first_live, "to", last_live)
    # Once live events arrive they are served within a couple of batches, ahead of the
    # ~360 bulk events still waiting.
    assert last_live - first_live < 80, (first_live, last_live)
    assert last_live < 300, (first_live, last_live)
    assert sorted(order) == sorted({*order})  # nothing twice


async def test_bulk_lane_events_on_a_live_topic_wait_behind_live_ones_in_order_per_lead(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic, name = "lanes.topic", "lanes-svc"
    await create_topics(broker.bootstrap_servers, [topic, f"{name}.dlq"], partitions=1)
    seen: list[tuple[str, str | None]] = []
    done = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        seen.append((event.id, current_lane()))
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))
        if len(seen) >= 311:
            done.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    sent: list[CloudEvent] = []
    futures = []
    plan: list[tuple[str, str | None]] = [(f"bulk-{i:03d}", "bulk") for i in range(300)]
    plan += [(f"live-{i}", None) for i in range(10)] + [("bulk-000", None)]
    for lead_id, lane in plan:
        event = CloudEvent(
            type="lead.erased",
            source="t",
            subject=lead_id,
            data={"lead_id": lead_id, "erased_at": utcnow().isoformat()},
            lane=lane,
        )
        sent.append(event)
        r = event.to_kafka()
        futures.append(await producer.send(topic, r.value, key=r.key, headers=r.headers))
    await asyncio.gather(*futures)
    consumer = _consumer(broker, db, producer, handlers, name, topic)
    consumer.bulk_per_batch = 50
    await consumer.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
        await asyncio.sleep(0.5)  # nothing more arrives
    finally:
        await consumer.stop()
        await producer.stop()
    position = {event_id: i for i, (event_id, _) in enumerate(seen)}
    assert len(seen) == len(position) == 311  # each event handled once
    live = [position[e.id] for e in sent[300:310]]
    assert max(live) < 60, live  # the live events overtook most of the bulk backlog
    # bulk-000's live follow-up stays behind bulk-000's bulk event (same lead, same order)
    assert position[sent[310].id] > position[sent[0].id]
    lanes = dict(seen)
    assert lanes[sent[0].id] == "bulk" and lanes[sent[301].id] is None
    # The lane travels: an event staged while handling bulk work carries ce_lane.
    with use_lane("bulk"):
        async with db.transaction() as session:
            staged = await Outbox(tables, "t").add(
                session, LeadErased(lead_id="x", erased_at=utcnow()), topic=topic
            )
    assert staged.lane == "bulk" and ("ce_lane", b"bulk") in staged.to_kafka().headers


async def test_the_bulk_lane_enters_at_its_configured_rate(
    broker: EmbeddedBroker, db: Database
) -> None:
    bulk, name = "rate.imported", "bulk-rate-svc"
    await create_topics(broker.bootstrap_servers, [bulk, f"{name}.dlq"], partitions=1)
    handled: list[float] = []
    all_done = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadCaptured)
    async def captured(session: AsyncSession, event: CloudEvent, data: LeadCaptured) -> None:
        handled.append(time.monotonic())
        if len(handled) >= 150:
            all_done.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    await _produce_captures(producer, bulk, "r", 150)
    consumer = _consumer(
        broker,
        db,
        producer,
        handlers,
        name,
        bulk,
        bulk_rate_per_s=50,
        bulk_topics=frozenset({bulk}),
    )
    await consumer.start()
    try:
        await asyncio.wait_for(all_done.wait(), timeout=30)
    finally:
        await consumer.stop()
        await producer.stop()
    # A burst of 50 (the bucket), then 50 per second: the last 100 take about two seconds.
    assert handled[-1] - handled[0] >= 1.5, handled[-1] - handled[0]
    assert len(handled) == 150


async def test_the_table_poll_gets_past_rows_the_relay_has_in_hand(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic = "relay.backlog"
    await create_topics(broker.bootstrap_servers, [topic], partitions=1)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(db, tables, producer, poll_interval_s=30, batch_size=10)
    relay._degraded = False  # as after start-up: the fast path takes new commits
    outbox = Outbox(tables, "leadflow/test")
    async with db.transaction() as session:  # 10 rows handed to the relay's fast path
        await outbox.add_many(
            session,
            [LeadErased(lead_id=f"q-{i}", erased_at=utcnow()) for i in range(10)],
            topic=topic,
        )
    relay._degraded = True  # 15 more rows committed while it polls the table
    async with db.transaction() as session:
        await outbox.add_many(
            session,
            [LeadErased(lead_id=f"t-{i}", erased_at=utcnow()) for i in range(15)],
            topic=topic,
        )
    try:
        # The first batch read is all in hand: the poll stops instead of re-reading it
        # forever, and the shutdown flush still publishes every row.
        assert await asyncio.wait_for(relay.publish_pending(), timeout=5) == 0
        await relay.stop()
        events = await _read(broker.bootstrap_servers, topic, want=25)
    finally:
        await producer.stop()
    assert len({e.lead_id for e in events}) == 25


async def test_stopping_the_consumer_commits_its_coalesced_offsets(
    broker: EmbeddedBroker, db: Database
) -> None:
    topic, name = "commit.topic", "commit-svc"
    await create_topics(broker.bootstrap_servers, [topic, f"{name}.dlq"], partitions=1)
    handled = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        if data.lead_id == "c-009":
            handled.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    await _produce_erasures(producer, topic, [f"c-{i:03d}" for i in range(10)])
    consumer = _consumer(broker, db, producer, handlers, name, topic, commit_interval_s=60)
    await consumer.start()
    try:
        await asyncio.wait_for(handled.wait(), timeout=20)
    finally:
        await consumer.stop()  # the 60 s interval has not passed: stop must commit
        await producer.stop()
    reader = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=name)
    await reader.start()
    try:
        assert await reader.committed(TopicPartition(topic, 0)) == 10
    finally:
        await reader.stop()


async def test_unknown_types_are_poison_known_unhandled_ones_are_skipped_big_ones_truncated(
    broker: EmbeddedBroker, db: Database
) -> None:
    """A ``ce_type`` outside the contract goes to the DLQ; a contract type this consumer has
    no handler for is skipped; a dead letter too large to send whole keeps its head, its
    size and its digest — and the consumer carries on after each."""
    topic, name = "kinds.topic", "kinds-svc"
    await create_topics(broker.bootstrap_servers, [topic, f"{name}.dlq"], partitions=1)
    done = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        if data.lead_id == "huge":
            raise ValueError("cannot handle this one")
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))
        if data.lead_id == "last":
            done.set()

    # A producer allowed to write what the service's own producer could not forward whole.
    big_producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, max_request_size=4 * 2**20
    )
    await big_producer.start()
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()

    def record(event_type: str, lead_id: str, **extra: Any) -> Any:
        return CloudEvent(
            type=event_type,
            source="t",
            subject=lead_id,
            data={"lead_id": lead_id, "erased_at": utcnow().isoformat(), **extra},
        ).to_kafka()

    huge = record("lead.erased", "huge", blob="x" * (2 * 2**20))
    sent = [
        record("lead.teleported", "unknown"),  # not a contract type: poison
        record("lead.merged", "unhandled"),  # a contract type nobody here handles: skipped
        huge,
        record("lead.erased", "last"),
    ]
    for r in sent:
        await big_producer.send_and_wait(topic, r.value, key=r.key, headers=r.headers)
    consumer = _consumer(broker, db, producer, handlers, name, topic, max_attempts=1)
    await consumer.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await consumer.stop()
        await producer.stop()
        await big_producer.stop()
    assert await _effects(db) == ["last"]
    letters = await _read_raw(broker.bootstrap_servers, f"{name}.dlq", want=2)
    by_subject = {h["ce_subject"]: h for h in letters}
    assert set(by_subject) == {"unknown", "huge"}
    assert "unknown event type 'lead.teleported'" in by_subject["unknown"]["dlq_error"]
    assert by_subject["huge"]["dlq_truncated"] == str(len(huge.value))
    assert by_subject["huge"]["dlq_error"].startswith("ValueError")
    assert len(by_subject["huge"]["dlq_value_sha256"]) == 64
