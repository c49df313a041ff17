"""SQLite driven on the event loop's own thread: an aiosqlite-shaped connection whose
coroutines run each statement at once instead of handing it to a worker thread.

aiosqlite runs every call (cursor, execute, fetchall, commit, close) on a thread of its
own and wakes the event loop when it is done: two thread hand-offs and a loop wake-up per
call, several calls per statement. Profiles of scoring and routing at 50 leads/s put that
machinery near half of their CPU (docs/benchmarks.md), while the statements themselves
take microseconds on a local WAL file. Here every call completes before it returns, so
SQLAlchemy's ``await_`` costs a greenlet switch, not a round trip through another thread.

What that changes, and how it is kept safe:
- **Locks never block the loop.** ``busy_timeout`` is 0 on these connections; a statement
  that meets another connection's write lock (another process, or a writer outside
  ``Database.transaction``) gets SQLITE_BUSY at once and is retried here after an
  ``asyncio.sleep`` with backoff, up to ``busy_timeout_s``. The loop keeps serving the
  holder of the lock meanwhile, so a lock held in this process cannot deadlock it. A busy
  statement has had no effect, so running it again is safe (in WAL mode only the first
  write of a transaction, BEGIN IMMEDIATE or a checkpoint can be busy). SQLITE_BUSY_SNAPSHOT
  (a read snapshot that can no longer become a write) is never retried: it is raised, as
  with aiosqlite.
- **Long statements would stall the loop**, so ``Database`` keeps a threaded (aiosqlite)
  engine for ``Database.read()``: dashboards, reports and exports read off the loop;
  transactions (the hot path: consumers, the relay, API writes) run inline.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

# Primary code SQLITE_BUSY and SQLITE_BUSY_RECOVERY retry; SQLITE_BUSY_SNAPSHOT (517) does
# not (the transaction must roll back), nor does SQLITE_BUSY_TIMEOUT (773).
_RETRYABLE_BUSY = frozenset({5, 261})
_FIRST_BACKOFF_S = 0.001
_MAX_BACKOFF_S = 0.05


def _is_retryable_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code in _RETRYABLE_BUSY
    return "database is locked" in str(error)


async def _retry_busy(call: Callable[[], Any], timeout_s: float) -> Any:
    """Run ``call``; while SQLite answers SQLITE_BUSY, yield to the loop and run it again."""
    try:
        return call()
    except sqlite3.OperationalError as error:
        if not _is_retryable_busy(error):
            raise
    deadline = time.monotonic() + timeout_s
    delay = _FIRST_BACKOFF_S
    while True:
        await asyncio.sleep(delay)
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _is_retryable_busy(error) or time.monotonic() >= deadline:
                raise
        delay = min(delay * 2, _MAX_BACKOFF_S)


class InlineCursor:
    """The subset of aiosqlite's ``Cursor`` that SQLAlchemy's adapter uses."""

    __slots__ = ("_cursor", "_timeout_s")

    def __init__(self, cursor: sqlite3.Cursor, timeout_s: float) -> None:
        self._cursor = cursor
        self._timeout_s = timeout_s

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cursor = self._cursor
        if parameters is None:
            await _retry_busy(lambda: cursor.execute(sql), self._timeout_s)
        else:
            await _retry_busy(lambda: cursor.execute(sql, parameters), self._timeout_s)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        cursor = self._cursor
        # A busy executemany stops at its first row (the write lock is taken there and held
        # to the end of the transaction), so a retry never applies a row twice. The rows are
        # listed once so a retry does not find an exhausted iterator.
        rows = parameters if isinstance(parameters, Sequence) else list(parameters)
        await _retry_busy(lambda: cursor.executemany(sql, rows), self._timeout_s)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            return self._cursor.fetchmany()
        return self._cursor.fetchmany(size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy's adapter uses only to set
    ``isolation_level``: the function runs at once and the future is resolved."""

    __slots__ = ()

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except BaseException as error:  # handed to the awaiting caller
            future.set_exception(error)


class InlineConnection:
    """The subset of aiosqlite's ``Connection`` that SQLAlchemy's adapter uses."""

    def __init__(self, connection: sqlite3.Connection, busy_timeout_s: float) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue()
        self._timeout_s = busy_timeout_s

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._conn.isolation_level = value

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._timeout_s)

    async def commit(self) -> None:
        await _retry_busy(self._conn.commit, self._timeout_s)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Force-close (SQLAlchemy's terminate when not in a greenlet)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def inline_creator(database: str, *, busy_timeout_s: float = 30.0) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine("sqlite+aiosqlite://...")``."""

    async def connect() -> InlineConnection:
        connection = sqlite3.connect(database, check_same_thread=False, detect_types=0, timeout=0)
        return InlineConnection(connection, busy_timeout_s)

    return connect
