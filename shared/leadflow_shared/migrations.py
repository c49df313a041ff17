"""Alembic migrations per service, run at start-up.

Each service keeps ``migrations/`` (an ``env.py`` calling :func:`run_alembic_env` and a
``versions/`` folder) inside its package. New revisions are generated against a scratch
SQLite database::

    python -m leadflow_shared.migrations revision leadflow_routing "add rep weight"
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Connection, MetaData, create_engine, text

from leadflow_shared.db import Database


def _config(package: str) -> Config:
    module = importlib.import_module(package)
    assert module.__file__ is not None
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(module.__file__).parent / "migrations"))
    return cfg


async def upgrade_to_head(db: Database, package: str) -> None:
    """Bring ``db`` to the newest revision of ``package``'s migrations."""
    cfg = _config(package)

    def _upgrade(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait and find it done.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"migrate:{package}"}
            )
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade)


def run_alembic_env(metadata: MetaData) -> None:
    """Body of every service's ``migrations/env.py``."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        url = context.config.get_main_option("sqlalchemy.url")
        assert url, "sqlalchemy.url or a connection is required"
        engine = create_engine(url)
        with engine.begin() as conn:
            _run(conn, metadata)
        return
    _run(connection, metadata)


def _run(connection: Connection, metadata: MetaData) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _revision(package: str, message: str) -> None:
    cfg = _config(package)
    with tempfile.TemporaryDirectory() as tmp:
        cfg.set_main_option("sqlalchemy.url", f"sqlite:///{tmp}/scratch.sqlite3")
        command.upgrade(cfg, "head")
        kwargs: dict[str, Any] = {"message": message, "autogenerate": True}
        command.revision(cfg, **kwargs)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "revision":
        print("usage: python -m leadflow_shared.migrations revision <package> <message>")
        raise SystemExit(2)
    _revision(sys.argv[2], sys.argv[3])
