"""Database engine, sessions and column types shared by every service.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is used when the
service's ``DATABASE_URL_<SERVICE>`` is set. Only request/message boundaries commit.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator, TypeEngine

from leadflow_shared.sqlite_inline import inline_creator


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; leadflow stores timezone-aware UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Exact decimal amounts: NUMERIC on PostgreSQL, text on SQLite (which has no decimal)."""

    impl = Numeric(20, 4)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(40))
        return dialect.type_descriptor(Numeric(20, 4))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


class Database:
    """One service's engine and session factory.

    ``on_commit`` callbacks run after every successful commit of a session made here:
    the outbox relay uses it to publish without polling delay.

    On SQLite two engines share the file: ``engine`` runs statements on the event loop's
    thread (:mod:`leadflow_shared.sqlite_inline`: no thread hand-off per call, the hot
    path of consumers, the relay and API writes) and ``off_loop_engine`` on aiosqlite's
    worker threads, for reads that may be long (``read()``, ``transaction(off_loop=True)``
    for GET requests). ``LEADFLOW_SQLITE_INLINE=0`` puts everything on aiosqlite's
    threads, as before. On PostgreSQL both names are the same asyncpg engine.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        inline = False
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                inline = _inline_wanted()  # a file: a memory database has one connection
            kwargs["connect_args"] = {"timeout": 30}
        else:
            # No pre-ping: it costs a round trip per checkout; a connection that died is
            # invalidated when it fails and the boundary's retry gets a fresh one.
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=False)
            if parsed.drivername == "postgresql+asyncpg":
                # A database that accepts the TCP connection but never answers (a black
                # hole) fails the connect in 5 s, not asyncpg's 60: the API answers 503
                # and the consumer pauses (docs/RELIABILITY.md, scenario 6).
                kwargs["connect_args"] = {"timeout": 5}
            kwargs["pool_timeout"] = 10
        self.off_loop_engine: AsyncEngine = create_async_engine(url, **kwargs)
        if inline:
            assert parsed.database is not None
            inline_kwargs = {k: v for k, v in kwargs.items() if k != "connect_args"}
            self.engine: AsyncEngine = create_async_engine(
                url, async_creator=inline_creator(parsed.database), **inline_kwargs
            )
            # No busy wait inside SQLite on the loop's thread: it would stall every task;
            # sqlite_inline waits with asyncio.sleep instead.
            event.listen(self.engine.sync_engine, "connect", partial(_sqlite_pragmas, busy_ms=0))
            event.listen(self.off_loop_engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            self.engine = self.off_loop_engine
            if self.is_sqlite:
                event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # A subclass per database so commit listeners never cross between services
        # that share a process (as in unit tests).
        self._session_class: type[Session] = type("ServiceSession", (Session,), {})
        self._commit_callbacks: list[Callable[[Session], None]] = []
        self._rollback_callbacks: list[Callable[[Session], None]] = []
        event.listen(self._session_class, "after_commit", self._after_commit)
        event.listen(self._session_class, "after_rollback", self._after_rollback)
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=self._session_class
        )
        self.off_loop_sessions = (
            self.sessions
            if self.off_loop_engine is self.engine
            else async_sessionmaker(
                self.off_loop_engine,
                expire_on_commit=False,
                sync_session_class=self._session_class,
            )
        )
        # SQLite allows one writer; serialising writers in-process avoids lock errors.
        self.write_lock = asyncio.Lock() if self.is_sqlite else None

    def on_commit(self, callback: Callable[[Session], None]) -> None:
        """Register a callback run after each commit of this database's sessions."""
        self._commit_callbacks.append(callback)

    def on_rollback(self, callback: Callable[[Session], None]) -> None:
        """Register a callback run after each rollback of this database's sessions."""
        self._rollback_callbacks.append(callback)

    def _after_commit(self, session: Session) -> None:
        for callback in self._commit_callbacks:
            callback(session)

    def _after_rollback(self, session: Session) -> None:
        for callback in self._rollback_callbacks:
            callback(session)

    @asynccontextmanager
    async def transaction(self, *, off_loop: bool = False) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: commits on success, rolls back on error.

        ``off_loop``: run its statements off the event loop's thread (SQLite), for work
        that may read a lot (GET requests); the same as the default on PostgreSQL."""
        sessions = self.off_loop_sessions if off_loop else self.sessions
        if self.write_lock is not None:
            async with self.write_lock, sessions() as session, session.begin():
                yield session
        else:
            async with sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: never takes SQLite's in-process write lock (WAL lets
        readers run beside the writer), off the event loop's thread; rolled back at the
        end."""
        async with self.off_loop_sessions() as session:
            try:
                yield session
            finally:
                await session.rollback()

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.off_loop_engine is not self.engine:
            await self.off_loop_engine.dispose()


def _inline_wanted() -> bool:
    return os.environ.get("LEADFLOW_SQLITE_INLINE", "1").strip().lower() not in (
        "0",
        "false",
        "no",
        "off",
    )


def _sqlite_pragmas(
    dbapi_connection: Any, connection_record: Any, *, busy_ms: int = 30_000
) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
