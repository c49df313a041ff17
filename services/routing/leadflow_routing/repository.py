"""Every query routing makes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.models import Decision, Rep, RotationEntry, RoutedLead, RuleSetVersion
from leadflow_routing.strategies import RotationStats

# Open work per role; an account manager keeps every account, so "am" has no filter.
OPEN_STATUSES = {"sdr": ("assigned", "accepted"), "ae": ("qualified",)}


class RoutingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- leads ---------------------------------------------------------------------------
    async def lead(self, lead_id: str, *, for_update: bool = False) -> RoutedLead | None:
        query = select(RoutedLead).where(RoutedLead.id == lead_id)
        if for_update:
            query = query.with_for_update()
        return await self.session.scalar(query)

    def add(self, row: RoutedLead | Decision | Rep | RuleSetVersion | RotationEntry) -> None:
        self.session.add(row)

    async def history(self, lead_id: str) -> list[Decision]:
        rows = await self.session.scalars(
            select(Decision).where(Decision.lead_id == lead_id).order_by(Decision.at, Decision.id)
        )
        return list(rows)

    async def queue(self, role: str, owner: str) -> list[RoutedLead]:
        column = {"sdr": RoutedLead.sdr, "ae": RoutedLead.ae, "am": RoutedLead.am}[role]
        query = select(RoutedLead).where(column == owner)
        if role != "am":
            query = query.where(RoutedLead.status.in_(OPEN_STATUSES[role]))
        rows = await self.session.scalars(query.order_by(RoutedLead.updated_at))
        return list(rows)

    async def sla_due(self, now: datetime, limit: int = 100) -> list[RoutedLead]:
        rows = await self.session.scalars(
            select(RoutedLead)
            .where(RoutedLead.status == "assigned", RoutedLead.sla_due_at <= now)
            .order_by(RoutedLead.sla_due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def waiting_for_rep(self, limit: int = 100) -> list[RoutedLead]:
        rows = await self.session.scalars(
            select(RoutedLead)
            .where(RoutedLead.status.in_(("waiting_for_rep", "waiting_for_ae")))
            .order_by(RoutedLead.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def mql_leads(self, limit: int) -> list[RoutedLead]:
        rows = await self.session.scalars(
            select(RoutedLead)
            .where(
                RoutedLead.mql.is_(True),
                RoutedLead.profile_known.is_(True),
                RoutedLead.erased.is_(False),
            )
            .order_by(RoutedLead.captured_at)
            .limit(limit)
        )
        return list(rows)

    # --- team ----------------------------------------------------------------------------
    async def rep(self, rep_id: str) -> Rep | None:
        return await self.session.get(Rep, rep_id)

    async def reps(self, role: str | None = None) -> list[Rep]:
        query = select(Rep).order_by(Rep.id)
        if role is not None:
            query = query.where(Rep.role == role)
        return list(await self.session.scalars(query))

    async def assigned_since(self, since: datetime) -> dict[str, int]:
        rows = await self.session.execute(
            select(Decision.owner, func.count())
            .where(Decision.kind.in_(("assigned", "reassigned")), Decision.at >= since)
            .group_by(Decision.owner)
        )
        return {owner: count for owner, count in rows if owner}

    async def open_load(self, role: str) -> dict[str, int]:
        column = {"sdr": RoutedLead.sdr, "ae": RoutedLead.ae, "am": RoutedLead.am}[role]
        query = select(column, func.count()).where(column.is_not(None)).group_by(column)
        if role != "am":
            query = query.where(RoutedLead.status.in_(OPEN_STATUSES[role]))
        rows = await self.session.execute(query)
        return {owner: count for owner, count in rows if owner}

    async def rotation(self, role: str) -> dict[str, dict[str, RotationStats]]:
        rows = await self.session.scalars(
            select(RotationEntry).where(RotationEntry.pool.like(f"{role}:%"))
        )
        out: dict[str, dict[str, RotationStats]] = {}
        for row in rows:
            out.setdefault(row.pool, {})[row.rep_id] = RotationStats(
                row.assigned_count, row.last_assigned_at
            )
        return out

    async def count_rotation(self, pool: str, rep_id: str, at: datetime) -> None:
        row = await self.session.get(RotationEntry, (pool, rep_id))
        if row is None:
            self.session.add(
                RotationEntry(pool=pool, rep_id=rep_id, assigned_count=1, last_assigned_at=at)
            )
        else:
            row.assigned_count += 1
            row.last_assigned_at = at

    async def lock_role(self, role: str) -> None:
        """Serialise decisions for one role across replicas (PostgreSQL advisory lock), so
        rotation counters are never read stale by a concurrent decision."""
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"routing:{role}"}
            )

    # --- rules ---------------------------------------------------------------------------
    async def current_rules(self) -> RuleSetVersion | None:
        return await self.session.scalar(
            select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1)
        )


def start_of_day(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)
