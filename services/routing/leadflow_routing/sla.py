"""The durable timer: SLA breaches and leads waiting for a free rep.

Deadlines live in the database (``leads.sla_due_at``, waiting statuses), so a restart or
another replica picks them up; rows are claimed with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL so two replicas never breach the same lead twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.assignment import assign_ae, assign_am, assign_sdr, breach_sla
from leadflow_routing.models import outbox
from leadflow_routing.repository import WAITING, RoutingRepository
from leadflow_shared.db import Database
from leadflow_shared.ids import utcnow
from leadflow_shared.observability import log_fields
from leadflow_shared.periodic import PeriodicTask

log = logging.getLogger(__name__)
RETRY = {"waiting_for_rep": assign_sdr, "waiting_for_ae": assign_ae, "waiting_for_am": assign_am}


async def retry_waiting(
    session: AsyncSession, now: datetime, statuses: Sequence[str] = tuple(WAITING.values())
) -> int:
    """Try again to route the leads waiting for a free rep (SDR, AE or account manager);
    returns how many found one. A lead that still finds nobody goes to the back of the line
    (``updated_at``), so a few that nobody can take never hide the others."""
    repo = RoutingRepository(session)
    await repo.lock_decisions()
    routed = 0
    for lead in await repo.waiting(statuses):
        before = lead.status
        await RETRY[lead.status](session, outbox, lead, now)
        if lead.status != before:
            routed += 1
        else:
            lead.updated_at = now
    return routed


async def retry_waiting_for(session: AsyncSession, role: str) -> int:
    """A rep of ``role`` was added or changed (capacity, out of office, hours): the leads
    waiting for that role get their chance in the same transaction, not at the next tick."""
    status = WAITING.get(role)
    return 0 if status is None else await retry_waiting(session, utcnow(), (status,))


class SlaTimer(PeriodicTask):
    def __init__(self, db: Database, interval_s: float) -> None:
        super().__init__("sla-timer", interval_s, self.tick)
        self.db = db

    async def tick(self) -> int:
        """Handle every due deadline once; returns how many leads were acted on."""
        acted = 0
        async with self.db.transaction() as session:
            repo = RoutingRepository(session)
            # Before claiming leads: a batch of events holding the lock may want one of them.
            await repo.lock_decisions()
            now = utcnow()
            for lead in await repo.sla_due(now):
                await breach_sla(session, outbox, lead, now)
                acted += 1
            acted += await retry_waiting(session, now)
        if acted:
            log.info("timer acted", extra=log_fields(leads=acted))
        return acted
