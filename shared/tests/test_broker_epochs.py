"""A fresh in-memory broker lost what it held: the relay republishes what it sent to the
previous one (``OutboxRelay.adopt_broker_epoch``), and nothing older."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import MetaData, func, select, update

from leadflow_shared.broker import EmbeddedBroker, free_port
from leadflow_shared.db import Database
from leadflow_shared.events import CloudEvent, LeadErased
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.messaging import (
    Outbox,
    OutboxRelay,
    create_topics,
    define_messaging_tables,
    new_producer,
)

metadata = MetaData()
tables = define_messaging_tables(metadata)
TOPIC = "privacy.erasure"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'epochs.sqlite3'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def _ids_on(bootstrap: str, want: int, timeout_s: float = 10) -> list[str]:
    consumer = AIOKafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"reader-{new_id()}",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    out: list[str] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(out) < want and time.monotonic() < deadline:
            for messages in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(CloudEvent.from_kafka(m.value, m.headers).id for m in messages)
    finally:
        await consumer.stop()
    return out


async def _publish(
    db: Database, broker: EmbeddedBroker, epoch: str, leads: list[str]
) -> int | None:
    """One run of a service against ``broker``: adopt its epoch, publish ``leads``' events,
    stop (flushing). Returns what ``adopt_broker_epoch`` said."""
    await create_topics(broker.bootstrap_servers, [TOPIC], partitions=1)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(db, tables, producer, poll_interval_s=0.2)
    try:
        adopted = await relay.adopt_broker_epoch(epoch)
        relay.start()
        outbox = Outbox(tables, "leadflow/test")
        for lead in leads:
            async with db.transaction() as session:
                await outbox.add(session, LeadErased(lead_id=lead, erased_at=utcnow()))
        await relay.stop()
    finally:
        await producer.stop()
    return adopted


async def _sent_ids(db: Database) -> list[str]:
    async with db.read() as session:
        rows = await session.execute(
            select(tables.outbox.c.event_id, tables.outbox.c.sent_at).order_by(tables.outbox.c.seq)
        )
        return [r.event_id for r in rows if r.sent_at is not None]


async def test_a_fresh_broker_gets_what_the_previous_one_held_in_order(
    db: Database, tmp_path: Path
) -> None:
    first = EmbeddedBroker(free_port(), tmp_path / "first.log")
    first.start()
    try:
        # No epoch recorded and nothing sent yet: nothing to republish.
        assert await _publish(db, first, "epoch-1", ["a", "b", "c"]) == 0
        sent = await _sent_ids(db)
        assert len(sent) == 3
        assert await _ids_on(first.bootstrap_servers, 3) == sent
        # The same broker again (a service restart): known epoch, nothing republished.
        assert await _publish(db, first, "epoch-1", ["d"]) is None
        sent = await _sent_ids(db)
        assert await _ids_on(first.bootstrap_servers, 4) == sent
    finally:
        first.stop()

    # The broker restarted empty (a new epoch): everything it held comes back, in sequence
    # order, before and together with what is published afterwards.
    second = EmbeddedBroker(free_port(), tmp_path / "second.log")
    second.start()
    try:
        assert await _publish(db, second, "epoch-2", ["e"]) == 4
        assert await _ids_on(second.bootstrap_servers, 5) == await _sent_ids(db)
    finally:
        second.stop()
    async with db.read() as session:
        epochs = dict(
            (
                await session.execute(
                    select(tables.broker_epochs.c.epoch, tables.broker_epochs.c.republished)
                )
            ).all()
        )
    assert epochs == {"epoch-1": 0, "epoch-2": 4}


async def test_only_rows_sent_since_the_previous_epoch_began_are_republished(
    db: Database, tmp_path: Path
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    broker.start()
    try:
        await _publish(db, broker, "old", ["long-ago"])
        await _publish(db, broker, "previous", ["yesterday"])
        # Back-date: "old" began three days ago and was sent its row two days ago; the
        # broker of epoch "previous" took over yesterday and was sent one row.
        outbox, epochs = tables.outbox, tables.broker_epochs
        now = utcnow()
        async with db.transaction() as session:
            await session.execute(
                update(outbox)
                .where(outbox.c.aggregate_id == "long-ago")
                .values(sent_at=now - timedelta(days=2))
            )
            for epoch, age in (("old", 3), ("previous", 1)):
                await session.execute(
                    update(epochs)
                    .where(epochs.c.epoch == epoch)
                    .values(first_seen_at=now - timedelta(days=age))
                )
        sent = await _sent_ids(db)
        # Now a fresh broker: only "yesterday" was in the previous broker.
        producer = new_producer(broker.bootstrap_servers, "test")
        await producer.start()
        try:
            relay = OutboxRelay(db, tables, producer)
            assert await relay.adopt_broker_epoch("fresh") == 1
            async with db.read() as session:
                unsent = await session.scalar(
                    select(tables.outbox.c.event_id).where(tables.outbox.c.sent_at.is_(None))
                )
            assert unsent == sent[1]
        finally:
            await producer.stop()
    finally:
        broker.stop()


async def test_replicas_meeting_a_new_epoch_together_mark_the_rows_once(
    db: Database, tmp_path: Path
) -> None:
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    broker.start()
    try:
        await _publish(db, broker, "one", ["x", "y"])
        producer = new_producer(broker.bootstrap_servers, "test")
        await producer.start()
        try:
            relays = [OutboxRelay(db, tables, producer) for _ in range(3)]
            results = await asyncio.gather(*(r.adopt_broker_epoch("two") for r in relays))
        finally:
            await producer.stop()
        assert sorted(results, key=lambda r: -1 if r is None else r) == [None, None, 2]
        async with db.read() as session:
            assert await session.scalar(select(func.count()).select_from(tables.broker_epochs)) == 2
    finally:
        broker.stop()
