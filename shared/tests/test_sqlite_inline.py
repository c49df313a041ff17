"""SQLite on the event loop's thread (leadflow_shared.sqlite_inline, used by Database).

What must hold: transactions run inline (no aiosqlite thread), reads that may be long run
off the loop, a write lock held elsewhere never stalls the loop nor deadlocks it, and a
busy statement retried has exactly one effect."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, text

from leadflow_shared.db import Database
from leadflow_shared.sqlite_inline import InlineConnection

metadata = MetaData()
items = Table("items", metadata, Column("id", String, primary_key=True), Column("n", Integer))


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.sqlite3'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def _driver(session: object) -> object:
    connection = await session.connection()  # type: ignore[attr-defined]
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def test_transactions_run_inline_and_reads_off_the_loop(db: Database) -> None:
    async with db.transaction() as session:
        assert isinstance(await _driver(session), InlineConnection)
        await session.execute(insert(items).values(id="a", n=1))
    async with db.transaction(off_loop=True) as session:
        assert isinstance(await _driver(session), aiosqlite.Connection)
        await session.execute(insert(items).values(id="b", n=2))
    async with db.read() as session:
        assert isinstance(await _driver(session), aiosqlite.Connection)
        assert (await session.execute(select(func.sum(items.c.n)))).scalar_one() == 3


async def test_switch_puts_everything_back_on_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_SQLITE_INLINE", "0")
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'threads.sqlite3'}")
    try:
        assert database.engine is database.off_loop_engine
        async with database.transaction() as session:
            assert isinstance(await _driver(session), aiosqlite.Connection)
    finally:
        await database.dispose()


async def test_a_lock_held_elsewhere_is_waited_for_without_stalling_the_loop(
    db: Database, tmp_path: Path
) -> None:
    """Another process (here: another Database on the same file, so another connection
    pool and no shared in-process lock) holds the write lock while this loop runs. With
    SQLite's own busy wait on the loop's thread the holder could never commit (it runs on
    the same loop): the writer would stall everything for the whole busy timeout."""
    other = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.sqlite3'}")
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    holding = asyncio.Event()

    async def holder() -> None:
        async with other.sessions() as session, session.begin():
            await session.execute(insert(items).values(id="held", n=1))
            holding.set()
            await asyncio.sleep(0.3)

    tick = asyncio.create_task(ticker())
    hold = asyncio.create_task(holder())
    await holding.wait()
    started = time.monotonic()
    async with db.transaction() as session:
        await session.execute(insert(items).values(id="waiter", n=1))
    waited = time.monotonic() - started
    await hold
    stop.set()
    await tick
    await other.dispose()

    assert waited >= 0.2, "the writer did not wait for the lock"
    assert max(gaps) < 0.15, f"the event loop stalled {max(gaps):.3f} s"
    async with db.read() as session:
        rows = (await session.execute(select(items.c.id).order_by(items.c.id))).scalars().all()
    assert rows == ["held", "waiter"]


async def test_a_busy_executemany_applies_each_row_once(db: Database, tmp_path: Path) -> None:
    other = sqlite3.connect(tmp_path / "inline.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO items (id, n) VALUES ('x', 0)")

    async def release() -> None:
        await asyncio.sleep(0.1)
        other.execute("COMMIT")

    releasing = asyncio.create_task(release())
    async with db.transaction() as session:
        await session.execute(insert(items), [{"id": f"r{i}", "n": i} for i in range(50)])
    await releasing
    other.close()
    async with db.read() as session:
        assert (await session.execute(select(func.count()).select_from(items))).scalar() == 51


async def test_a_stale_snapshot_is_raised_not_retried(db: Database, tmp_path: Path) -> None:
    """SQLITE_BUSY_SNAPSHOT can never succeed by waiting: it fails at once, as before."""
    async with db.transaction() as session:
        await session.execute(insert(items).values(id="seed", n=0))
    async with db.sessions() as session:
        await session.execute(text("BEGIN"))
        await session.execute(select(items.c.n))  # a read snapshot
        other = sqlite3.connect(tmp_path / "inline.sqlite3", isolation_level=None)
        other.execute("INSERT INTO items (id, n) VALUES ('newer', 1)")
        other.close()
        started = time.monotonic()
        with pytest.raises(Exception, match=r"locked|busy"):
            await session.execute(insert(items).values(id="late", n=2))
        assert time.monotonic() - started < 1.0
        await session.rollback()
