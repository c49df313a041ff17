"""Fault scenario 4: transactions that commit out of outbox-id order.

T1 takes outbox ids (``seq``) first, T2 takes later ones and commits first, then T1
commits. A relay that tracked "the highest id published" would skip T1's rows for good; a
poll that published by id while T1 was still open would put T1's rows behind T2's after
they were already on the topic. Each test puts one lead's events in both transactions
(plus leads of their own in each) and checks, on the topic: every committed event
published exactly once, none of the rolled-back ones, and each lead's events in the order
they became visible — commit order between transactions, insertion order inside one.

Paths: the commit hook (the relay's own process wrote the rows), the table poll (another
process wrote them: the relay never sees the commits), the degraded mode (after a failed
send the relay publishes from the table until it is drained), and a relay that starts
after both transactions committed (it can only follow ids then; see the last test).

PostgreSQL (``LEADFLOW_TEST_PG``, default the local server): the poll's ordering only
matters where writers run concurrently; SQLite serialises them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.broker import EmbeddedBroker
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

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = define_messaging_tables(metadata)
ADMIN_DSN = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database with the messaging tables; dropped afterwards."""
    name = f"leadflow_outbox_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    await db.dispose()
    yield url
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class Ledger:
    """What was committed, in visibility order per lead, and what must never appear."""

    expected: dict[str, list[str]] = field(default_factory=dict)  # lead -> event ids
    rolled_back: set[str] = field(default_factory=set)

    def committed(self, events: list[CloudEvent]) -> None:
        for event in events:
            self.expected.setdefault(event.lead_id, []).append(event.id)

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self.expected.values())


class Tx:
    """A transaction held open across awaits, so the test decides when it commits."""

    def __init__(self, db: Database, outbox: Outbox, topic: str) -> None:
        self.db, self.outbox, self.topic = db, outbox, topic
        self.events: list[CloudEvent] = []
        self._stack = AsyncExitStack()
        self._session: AsyncSession | None = None

    async def begin(self) -> Tx:
        self._session = await self._stack.enter_async_context(self.db.transaction())
        return self

    async def add(self, *leads: str) -> None:
        """Stage one event per lead, each inserted at once (so it takes its ``seq`` now)."""
        assert self._session is not None
        for lead in leads:
            data = LeadErased(lead_id=lead, erased_at=utcnow())
            self.events.append(await self.outbox.add(self._session, data, topic=self.topic))

    async def seqs(self) -> list[int]:
        assert self._session is not None
        ids = [e.id for e in self.events]
        rows = await self._session.scalars(
            select(tables.outbox.c.seq).where(tables.outbox.c.event_id.in_(ids))
        )
        return sorted(rows)

    async def commit(self, ledger: Ledger) -> None:
        await self._stack.aclose()
        ledger.committed(self.events)

    async def roll_back(self, ledger: Ledger) -> None:
        await self._stack.__aexit__(RuntimeError, RuntimeError("rolled back"), None)
        ledger.rolled_back.update(e.id for e in self.events)


async def _topic_events(bootstrap: str, topic: str, want: int, timeout_s: float = 30) -> list[str]:
    """Event ids on ``topic`` per partition in offset order, merged (per-lead order holds:
    one lead, one key, one partition); reads until ``want`` arrived, then a little more so
    a duplicate would show."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"reader-{new_id()}",
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    out: list[tuple[str, str]] = []  # (lead, event id)
    try:
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if len(out) >= want and settle_until is None:
                settle_until = time.monotonic() + 0.5
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            for messages in (await consumer.getmany(timeout_ms=100)).values():
                for m in messages:
                    event = CloudEvent.from_kafka(m.value, m.headers)
                    out.append((event.lead_id, event.id))
    finally:
        await consumer.stop()
    return [event_id for _, event_id in out]


async def _assert_ledger(
    bootstrap: str, topic: str, ledger: Ledger, lead_of: dict[str, str]
) -> None:
    published = await _topic_events(bootstrap, topic, ledger.count)
    assert not ledger.rolled_back & set(published), "a rolled-back event was published"
    assert len(published) == len(set(published)), "an event was published twice"
    for lead, expected in ledger.expected.items():
        seen = [event_id for event_id in published if lead_of[event_id] == lead]
        assert seen == expected, f"lead {lead}: published {seen}, committed {expected}"


async def _unsent(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(select(func.count()).where(tables.outbox.c.sent_at.is_(None)))
    return int(count or 0)


async def _wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30
) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


async def _all_sent(db: Database) -> bool:
    """Every committed row is marked sent (T1's open rows are invisible here)."""
    return await _unsent(db) == 0


async def _scenario(
    writer: Database,
    outbox: Outbox,
    topic: str,
    *,
    wait_for_t2: Callable[[], Awaitable[None]],
    order: str = "commit",
) -> tuple[Ledger, dict[str, str]]:
    """T1 takes the first ids (two events of lead L, one of lead A), T3 the next ones and
    rolls back, T2 the last ones (lead L, lead B, lead L) and commits first; T1 commits once
    ``wait_for_t2()`` returns. The ledger expects each lead's events in commit ``order``
    (or in id ``order`` where both transactions committed before a relay saw either).
    Returns the ledger and event id -> lead."""
    ledger = Ledger()
    t1 = await Tx(writer, outbox, topic).begin()
    await t1.add("lead-L", "lead-A", "lead-L")
    t3 = await Tx(writer, outbox, topic).begin()
    await t3.add("lead-L", "lead-B")
    t2 = await Tx(writer, outbox, topic).begin()
    await t2.add("lead-L", "lead-B", "lead-L")
    assert max(await t1.seqs()) < min(await t3.seqs()) < min(await t2.seqs())
    await t3.roll_back(ledger)
    await t2.commit(ledger)
    await wait_for_t2()
    await t1.commit(ledger)
    if order == "id":
        ledger.expected = {}
        ledger.committed([*t1.events, *t2.events])
    lead_of = {e.id: e.lead_id for tx in (t1, t2, t3) for e in tx.events}
    return ledger, lead_of


@pytest.fixture
async def topic(broker: EmbeddedBroker) -> str:
    name = f"ordering-{secrets.token_hex(4)}"
    await create_topics(broker.bootstrap_servers, [name], partitions=2)
    return name


async def test_commit_hook_path_publishes_in_commit_order(
    broker: EmbeddedBroker, pg_url: str, topic: str
) -> None:
    db = Database(pg_url)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(db, tables, producer, poll_interval_s=3600)  # only the hook
    relay.start()
    try:
        await _wait_for(_not_degraded(relay), "the start-up poll")

        async def t2_published() -> None:
            await _wait_for(lambda: _all_sent(db), "T2 published by the commit hook")

        ledger, lead_of = await _scenario(
            db, Outbox(tables, "test"), topic, wait_for_t2=t2_published
        )
        await _wait_for(lambda: _all_sent(db), "T1 published")
        await _assert_ledger(broker.bootstrap_servers, topic, ledger, lead_of)
    finally:
        await relay.stop()
        await producer.stop()
        await db.dispose()


async def test_table_poll_path_never_skips_an_earlier_id_that_commits_later(
    broker: EmbeddedBroker, pg_url: str, topic: str
) -> None:
    """Another process wrote the rows: this relay never sees the commits and finds them
    by polling (batches of 2, so batch boundaries fall inside the transactions)."""
    writer, relay_db = Database(pg_url), Database(pg_url)
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(
        relay_db, tables, producer, poll_interval_s=0.05, poll_grace_s=0, batch_size=2
    )
    relay.start()
    try:

        async def t2_polled() -> None:
            await _wait_for(lambda: _all_sent(writer), "T2 published by the poll")

        ledger, lead_of = await _scenario(
            writer, Outbox(tables, "test"), topic, wait_for_t2=t2_polled
        )
        await _wait_for(lambda: _all_sent(writer), "T1 published by the poll")
        await _assert_ledger(broker.bootstrap_servers, topic, ledger, lead_of)
    finally:
        await relay.stop()
        await producer.stop()
        await writer.dispose()
        await relay_db.dispose()


class FlakyProducer:
    """Forwards to a real producer; ``send`` fails while ``failing`` is set (the broker
    away), so the relay falls back to its table poll: the degraded mode."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.failing = False
        self.failures = 0

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> Any:
        if self.failing:
            self.failures += 1
            raise KafkaConnectionError("broker away (injected)")
        return await self.producer.send(topic, value, **kwargs)


async def test_degraded_mode_publishes_from_the_table_without_skipping_or_reordering(
    broker: EmbeddedBroker, pg_url: str, topic: str
) -> None:
    """T2's commit-hook send fails: the relay publishes T2 from the table (degraded mode)
    while T1 is still open, returns to the fast path, and T1's commit hook publishes T1."""
    db = Database(pg_url)
    real = new_producer(broker.bootstrap_servers, "test")
    await real.start()
    flaky = FlakyProducer(real)
    relay = OutboxRelay(db, tables, cast(AIOKafkaProducer, flaky), poll_interval_s=3600)
    relay.start()
    try:
        await _wait_for(_not_degraded(relay), "the start-up poll")

        async def t2_via_the_table() -> None:
            await _wait_for(lambda: _degraded(relay), "the relay to fall back to the table")
            flaky.failing = False  # the broker is back: the poll publishes T2
            await _wait_for(lambda: _all_sent(db), "T2 published from the table")

        flaky.failing = True  # from here T2's commit-hook send fails
        ledger, lead_of = await _scenario(
            db, Outbox(tables, "test"), topic, wait_for_t2=t2_via_the_table
        )
        await _wait_for(lambda: _all_sent(db), "T1 published")
        assert flaky.failures >= 1
        await _assert_ledger(broker.bootstrap_servers, topic, ledger, lead_of)
    finally:
        await relay.stop()
        await real.stop()
        await db.dispose()


async def test_relay_starting_after_both_commits_publishes_everything_in_id_order(
    broker: EmbeddedBroker, pg_url: str, topic: str
) -> None:
    """Both transactions committed before any relay ran (a crash, a restart): the commit
    order is not recorded anywhere, so the poll follows the ids. Nothing is skipped; T1 and
    T2 overlapped, so neither saw the other's effects, and a handler that locks the lead
    before staging its events gets ids in the lead's commit order (docs/RELIABILITY.md)."""
    writer, relay_db = Database(pg_url), Database(pg_url)

    async def nothing() -> None:
        return None

    ledger, lead_of = await _scenario(
        writer, Outbox(tables, "test"), topic, wait_for_t2=nothing, order="id"
    )
    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    relay = OutboxRelay(relay_db, tables, producer, poll_interval_s=3600, batch_size=2)
    relay.start()
    try:
        await _wait_for(lambda: _all_sent(writer), "the start-up poll to publish both")
        await _assert_ledger(broker.bootstrap_servers, topic, ledger, lead_of)
    finally:
        await relay.stop()
        await producer.stop()
        await writer.dispose()
        await relay_db.dispose()


def _not_degraded(relay: OutboxRelay) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return not relay._degraded

    return probe


async def _degraded(relay: OutboxRelay) -> bool:
    return relay._degraded
