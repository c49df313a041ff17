from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import MetaData, insert, select

from leadflow_shared.db import Database
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import define_messaging_tables
from leadflow_shared.messaging.housekeeping import prune

metadata = MetaData()
tables = define_messaging_tables(metadata)


async def test_prune_deletes_old_sent_rows_and_old_ids_only(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'h.sqlite3'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    now = utcnow()
    old, recent = now - timedelta(days=30), now - timedelta(minutes=5)
    rows = {"old-sent": old, "recent-sent": recent, "old-unsent": None}
    async with db.transaction() as session:
        for event_id, sent_at in rows.items():
            await session.execute(
                insert(tables.outbox).values(
                    event_id=event_id,
                    aggregate_type="lead",
                    aggregate_id="l",
                    topic="t",
                    event_type="lead.erased",
                    key="l",
                    source="s",
                    subject="l",
                    payload={},
                    created_at=old,
                    sent_at=sent_at,
                )
            )
        for event_id, at in (("old-id", old), ("recent-id", recent)):
            await session.execute(
                insert(tables.processed_events).values(
                    consumer="c",
                    event_id=event_id,
                    event_type="x",
                    processed_at=at,
                )
            )
    deleted = await prune(
        db, tables, sent_before=now - timedelta(days=1), processed_before=now - timedelta(days=14)
    )
    assert deleted == (1, 1)
    async with db.transaction() as session:
        left = set(await session.scalars(select(tables.outbox.c.event_id)))
        ids = set(await session.scalars(select(tables.processed_events.c.event_id)))
    assert left == {"recent-sent", "old-unsent"}
    assert ids == {"recent-id"}
    await db.dispose()
