"""Keeping the outbox and the processed-event table from growing forever.

Sent outbox rows are kept for a while (to inspect what was published) and then deleted;
unsent rows are never touched. Processed-event ids must outlive any redelivery, so they are
kept longer than the topics' retention (Kafka's default is 7 days).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete

from leadflow_shared.db import Database
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging.tables import MessagingTables
from leadflow_shared.observability import log_fields
from leadflow_shared.periodic import PeriodicTask

log = logging.getLogger(__name__)


async def prune(
    db: Database, tables: MessagingTables, *, sent_before: datetime, processed_before: datetime
) -> tuple[int, int]:
    """Delete outbox rows sent before ``sent_before`` and processed-event ids recorded before
    ``processed_before``; returns how many of each were deleted. Off the event loop's
    thread on SQLite: a day's rows can take a while to delete."""
    async with db.transaction(off_loop=True) as session:
        outbox = await session.execute(
            delete(tables.outbox).where(
                tables.outbox.c.sent_at.is_not(None), tables.outbox.c.sent_at < sent_before
            )
        )
        processed = await session.execute(
            delete(tables.processed_events).where(
                tables.processed_events.c.processed_at < processed_before
            )
        )
    return int(getattr(outbox, "rowcount", 0)), int(getattr(processed, "rowcount", 0))


class Housekeeper(PeriodicTask):
    """Prunes every ``interval_s`` in the background."""

    def __init__(
        self,
        db: Database,
        tables: MessagingTables,
        *,
        outbox_retention_s: float,
        processed_retention_s: float,
        interval_s: float = 600,
    ) -> None:
        super().__init__("housekeeping", interval_s, self.prune_now)
        self.db = db
        self.tables = tables
        self.outbox_retention_s = outbox_retention_s
        self.processed_retention_s = processed_retention_s

    async def prune_now(self) -> None:
        now = utcnow()
        outbox, processed = await prune(
            self.db,
            self.tables,
            sent_before=now - timedelta(seconds=self.outbox_retention_s),
            processed_before=now - timedelta(seconds=self.processed_retention_s),
        )
        if outbox or processed:
            log.info("pruned", extra=log_fields(outbox=outbox, processed=processed))
