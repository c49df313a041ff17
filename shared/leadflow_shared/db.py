"""Database engine, sessions and column types shared by every service.

SQLite (aiosqlite) is the embedded default; PostgreSQL (asyncpg) is used when the
service's ``DATABASE_URL_<SERVICE>`` is set. Only request/message boundaries commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
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
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
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
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
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
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: commits on success, rolls back on error."""
        if self.write_lock is not None:
            async with self.write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: never takes SQLite's in-process write lock (WAL lets
        readers run beside the writer); rolled back at the end."""
        async with self.sessions() as session:
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


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
