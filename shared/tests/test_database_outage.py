"""Database outages (fault scenario 6, the unit part): the consumer pauses instead of
dead-lettering healthy messages, and the API answers 503 ``database_unavailable`` with
``Retry-After`` instead of a 500.

The outage is simulated: handlers raise what SQLAlchemy and asyncpg raise when the
connection is refused or lost, and the database's ping fails meanwhile. The cross-service
test (``tests/faults/test_database_outage.py``) cuts a real PostgreSQL connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from fastapi import FastAPI
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.broker import EmbeddedBroker
from leadflow_shared.db import Database
from leadflow_shared.errors import install_error_handlers, is_database_unavailable
from leadflow_shared.events import CloudEvent, LeadErased
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import (
    EventConsumer,
    HandlerRegistry,
    create_topics,
    define_messaging_tables,
    new_producer,
)
from leadflow_shared.messaging.consumer import HandlerFailed

pytestmark = pytest.mark.integration

metadata = MetaData()
tables = define_messaging_tables(metadata)
effects = Table(
    "outage_effects",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("lead_id", String(64)),
)


def _refused() -> OperationalError:
    """What SQLAlchemy raises when PostgreSQL refuses the connection."""
    return OperationalError("connect", None, ConnectionRefusedError(111, "Connection refused"))


def _lost() -> InterfaceError:
    """What SQLAlchemy raises when an established connection was cut."""
    orig = asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")
    return InterfaceError("select", None, orig, connection_invalidated=True)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'o.sqlite3'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


class Outage:
    """``outages`` outages in a row: each begins at a handler call (which raises ``error``)
    and ends after ``pings`` failed pings of the database (the consumer waited)."""

    def __init__(self, db: Database, error: Exception, outages: int, pings: int) -> None:
        self.down = False
        self.error = error
        self.outages_left = outages
        self.pings = pings
        self.failed_calls = 0
        self.failed_pings = 0
        self._pings_this_outage = 0
        real_ping = db.ping

        async def ping() -> bool:
            if not self.down:
                return await real_ping()
            self.failed_pings += 1
            self._pings_this_outage += 1
            if self._pings_this_outage >= self.pings:
                self.down = False  # back for the next ping
            return False

        db.ping = ping  # type: ignore[method-assign]

    def check(self) -> None:
        if not self.down and self.outages_left > 0:
            self.outages_left -= 1
            self.down = True
            self._pings_this_outage = 0
        if self.down:
            self.failed_calls += 1
            raise self.error


def _consumer(
    broker: EmbeddedBroker,
    db: Database,
    producer: AIOKafkaProducer,
    handlers: HandlerRegistry,
    name: str,
    topic: str,
) -> EventConsumer:
    consumer = EventConsumer(
        name=name,
        bootstrap_servers=broker.bootstrap_servers,
        db=db,
        tables=tables,
        producer=producer,
        handlers=handlers,
        dlq_topic=f"{name}.dlq",
        fetch_max_wait_ms=10,
        retry_base_ms=10,
        max_attempts=3,
        topics=[topic],
    )
    consumer.outage_ping_s = 0.01
    consumer.outage_ping_max_s = 0.05
    return consumer


async def _produce(producer: AIOKafkaProducer, topic: str, lead_ids: list[str]) -> None:
    futures = []
    for lead_id in lead_ids:
        r = CloudEvent(
            type="lead.erased",
            source="t",
            subject=lead_id,
            data={"lead_id": lead_id, "erased_at": utcnow().isoformat()},
        ).to_kafka()
        futures.append(await producer.send(topic, r.value, key=r.key, headers=r.headers))
    await asyncio.gather(*futures)


async def _messages_in(bootstrap: str, topic: str) -> int:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await reader.end_offsets([tp]))[tp])
    finally:
        await reader.stop()


async def _effects(db: Database) -> list[str]:
    async with db.read() as session:
        return list(await session.scalars(select(effects.c.lead_id).order_by(effects.c.lead_id)))


async def _run_outage(
    broker: EmbeddedBroker, db: Database, error: Exception, outages: int, pings: int
) -> tuple[Outage, list[str]]:
    """20 events through a consumer whose database goes away ``outages`` times."""
    name = f"outage-{secrets.token_hex(4)}"
    topic = f"{name}.topic"
    await create_topics(broker.bootstrap_servers, [topic, f"{name}.dlq"], partitions=1)
    outage = Outage(db, error, outages, pings)
    lead_ids = [f"lead-{i:02d}" for i in range(20)]
    done = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        outage.check()
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))
        if data.lead_id == lead_ids[-1]:
            done.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    consumer = _consumer(broker, db, producer, handlers, name, topic)
    try:
        await _produce(producer, topic, lead_ids)
        await consumer.start()
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await consumer.stop()
        await producer.stop()
    assert await _messages_in(broker.bootstrap_servers, f"{name}.dlq") == 0, "dead-lettered"
    return outage, lead_ids


@pytest.mark.parametrize(
    "error",
    [_refused(), _lost(), ConnectionRefusedError(111, "Connection refused"), PoolTimeout("x")],
    ids=["OperationalError", "InterfaceError-invalidated", "ConnectionRefusedError", "PoolTimeout"],
)
async def test_the_consumer_pauses_while_the_database_is_away_and_dead_letters_nothing(
    broker: EmbeddedBroker, db: Database, error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="leadflow_shared.messaging.consumer")
    outage, lead_ids = await _run_outage(broker, db, error, outages=6, pings=2)
    # Six failures in a row of the same first event, twice max_attempts: never given up.
    assert outage.failed_calls == 6
    assert await _effects(db) == lead_ids  # every event handled once, in the end
    paused = [r for r in caplog.records if r.getMessage().startswith("database unreachable")]
    resumed = [r for r in caplog.records if r.getMessage().startswith("database reachable")]
    assert len(paused) == len(resumed) == 6  # one warning per outage
    assert all(r.levelno == logging.WARNING for r in paused)
    # Not bisected nor retried event by event: no "handler failed; retrying" warnings.
    assert not [r for r in caplog.records if r.getMessage().startswith("handler failed")]


async def test_one_warning_per_outage(
    broker: EmbeddedBroker, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage that the first wait outlasts is logged once, however many pings fail."""
    caplog.set_level(logging.INFO, logger="leadflow_shared.messaging.consumer")
    outage, _ = await _run_outage(broker, db, _refused(), outages=1, pings=6)
    assert outage.failed_pings == 6
    paused = [r for r in caplog.records if r.getMessage().startswith("database unreachable")]
    assert len(paused) == 1


async def test_a_connectivity_error_with_the_database_up_is_an_ordinary_failure(
    broker: EmbeddedBroker, db: Database
) -> None:
    """A handler raising OSError while the database answers (say a call to another system)
    is retried and dead-lettered as before: the consumer does not pause for ever."""
    name = f"updb-{secrets.token_hex(4)}"
    topic = f"{name}.topic"
    await create_topics(broker.bootstrap_servers, [topic, f"{name}.dlq"], partitions=1)
    done = asyncio.Event()
    handlers = HandlerRegistry()

    @handlers.on(LeadErased)
    async def handle(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
        if data.lead_id == "bad":
            raise ConnectionRefusedError(111, "some other service")
        await session.execute(insert(effects).values(event_id=event.id, lead_id=data.lead_id))
        if data.lead_id == "after":
            done.set()

    producer = new_producer(broker.bootstrap_servers, "test")
    await producer.start()
    consumer = _consumer(broker, db, producer, handlers, name, topic)
    try:
        await _produce(producer, topic, ["before", "bad", "after"])
        await consumer.start()
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await consumer.stop()
        await producer.stop()
    assert await _effects(db) == ["after", "before"]
    assert await _messages_in(broker.bootstrap_servers, f"{name}.dlq") == 1


def test_what_counts_as_the_database_being_unavailable() -> None:
    assert is_database_unavailable(_refused())
    assert is_database_unavailable(_lost())
    assert is_database_unavailable(ConnectionRefusedError())
    assert is_database_unavailable(TimeoutError())
    assert is_database_unavailable(PoolTimeout("QueuePool limit reached"))
    assert is_database_unavailable(asyncpg.ConnectionDoesNotExistError("closed"))
    assert is_database_unavailable(asyncpg.CannotConnectNowError("starting up"))
    assert is_database_unavailable(HandlerFailed(0, 1, _refused()))
    try:
        raise RuntimeError("wrapped") from ConnectionResetError()
    except RuntimeError as wrapped:
        assert is_database_unavailable(wrapped)
    assert not is_database_unavailable(IntegrityError("insert", None, Exception("dup")))
    assert not is_database_unavailable(asyncpg.UniqueViolationError("dup"))
    assert not is_database_unavailable(ValueError("bad input"))


async def test_the_api_answers_503_with_retry_after_never_500() -> None:
    app = FastAPI()
    install_error_handlers(app)
    errors: dict[str, Exception] = {
        "refused": _refused(),
        "lost": _lost(),
        "oserror": ConnectionRefusedError(111, "Connection refused"),
        "pool": PoolTimeout("QueuePool limit reached"),
        "asyncpg": asyncpg.ConnectionDoesNotExistError("closed"),
        "integrity": IntegrityError("insert", None, Exception("dup")),
    }

    @app.get("/boom/{kind}")
    async def boom(kind: str) -> None:
        raise errors[kind]

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for kind in ("refused", "lost", "oserror", "pool", "asyncpg"):
            r = await client.get(f"/boom/{kind}")
            assert r.status_code == 503, (kind, r.text)
            assert r.json()["error"] == "database_unavailable"
            assert int(r.headers["Retry-After"]) > 0
        r = await client.get("/boom/integrity")
        assert r.status_code == 500  # not a connectivity problem: still a bug
        assert r.json()["error"] == "internal_error"


def test_sqlite_bugs_are_not_outages_but_a_locked_file_is() -> None:
    """SQLite raises OperationalError for a missing column as for a locked file: only the
    second is the database being away (503); the first is a bug (500)."""
    import sqlite3

    def wrapped(message: str) -> OperationalError:
        return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    assert not is_database_unavailable(wrapped("no such column: reps.manager"))
    assert not is_database_unavailable(wrapped("no such table: reps"))
    assert is_database_unavailable(wrapped("database is locked"))
    assert is_database_unavailable(wrapped("unable to open database file"))
