"""Every query scoring makes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import (
    EngagementRow,
    ErasedLead,
    LeadOwner,
    LeadProfileRow,
    LeadScoreRow,
    RulesVersionRow,
)


class LeadRepository:
    """The per-lead read model: profile, engagements, score, owners, erasure tombstone."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock(self, lead_id: str) -> None:
        """Serialise this transaction with others touching the same lead.

        A lead's profile and engagements arrive on different topics, which different group
        members may handle at once; without the lock each could score without the other's
        uncommitted fact. SQLite needs none: the service already serialises its writers.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:lead_id, 0))"),
                {"lead_id": lead_id},
            )

    async def profile(self, lead_id: str) -> LeadProfileRow | None:
        return await self.session.get(LeadProfileRow, lead_id)

    def add_profile(self, row: LeadProfileRow) -> None:
        self.session.add(row)

    async def engagements(self, lead_id: str) -> list[EngagementRow]:
        rows = await self.session.scalars(
            select(EngagementRow)
            .where(EngagementRow.lead_id == lead_id)
            .order_by(EngagementRow.occurred_at)
        )
        return list(rows)

    async def add_engagement(self, row: EngagementRow) -> bool:
        """Store an engagement unless its id is known (an engagement counts once)."""
        if await self.session.get(EngagementRow, row.engagement_id) is not None:
            return False
        self.session.add(row)
        await self.session.flush()
        return True

    async def score(self, lead_id: str) -> LeadScoreRow | None:
        return await self.session.get(LeadScoreRow, lead_id)

    def add_score(self, row: LeadScoreRow) -> None:
        self.session.add(row)

    async def owners(self, lead_id: str) -> dict[str, str]:
        rows = await self.session.scalars(select(LeadOwner).where(LeadOwner.lead_id == lead_id))
        return {row.role: row.owner for row in rows}

    async def set_owner(self, lead_id: str, role: str, owner: str) -> None:
        row = await self.session.get(LeadOwner, (lead_id, role))
        if row is None:
            self.session.add(LeadOwner(lead_id=lead_id, role=role, owner=owner))
        else:
            row.owner = owner

    async def is_erased(self, lead_id: str) -> bool:
        return await self.session.get(ErasedLead, lead_id) is not None

    async def erase(self, lead_id: str, erased_at: datetime) -> None:
        """Delete everything held about the lead; keep only an id tombstone."""
        for model in (LeadProfileRow, EngagementRow, LeadScoreRow, LeadOwner):
            await self.session.execute(delete(model).where(model.lead_id == lead_id))
        if not await self.is_erased(lead_id):
            self.session.add(ErasedLead(lead_id=lead_id, erased_at=erased_at))


class RulesRepository:
    """Versions of the scoring rules; the highest version is the one in force."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current(self) -> RulesVersionRow | None:
        return await self.session.scalar(
            select(RulesVersionRow).order_by(RulesVersionRow.version.desc()).limit(1)
        )

    async def next_version(self) -> int:
        highest = await self.session.scalar(select(func.max(RulesVersionRow.version)))
        return (highest or 0) + 1

    async def add(self, row: RulesVersionRow) -> None:
        """Insert and flush, so a concurrent writer of the same version fails here."""
        self.session.add(row)
        await self.session.flush()
