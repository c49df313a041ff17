"""Every query deals makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.models import Deal, ErasedLead, OwnerChange, Quota, StageChange
from leadflow_deals.stages import OPEN_STAGES


class DealRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, *rows: Deal | StageChange | OwnerChange) -> None:
        self.session.add_all(rows)

    async def get(self, deal_id: str, *, for_update: bool = False) -> Deal | None:
        """The deal; ``for_update`` locks its row until commit (concurrent edits queue)."""
        return await self.session.get(Deal, deal_id, with_for_update=for_update)

    async def open_deal_of_lead(self, lead_id: str) -> Deal | None:
        return await self.session.scalar(
            select(Deal).where(Deal.lead_id == lead_id, Deal.closed_at.is_(None)).with_for_update()
        )

    async def search(
        self, *, owner: str | None, stage: str | None, limit: int, offset: int
    ) -> Sequence[Deal]:
        query = select(Deal)
        if owner is not None:
            query = query.where(Deal.owner == owner)
        if stage is not None:
            query = query.where(Deal.stage == stage)
        query = query.order_by(Deal.created_at.desc(), Deal.id.desc()).limit(limit).offset(offset)
        return (await self.session.scalars(query)).all()

    async def stage_history(self, deal_id: str) -> Sequence[StageChange]:
        return (
            await self.session.scalars(
                select(StageChange)
                .where(StageChange.deal_id == deal_id)
                .order_by(StageChange.at, StageChange.id)
            )
        ).all()

    async def owner_history(self, deal_id: str) -> Sequence[OwnerChange]:
        return (
            await self.session.scalars(
                select(OwnerChange)
                .where(OwnerChange.deal_id == deal_id)
                .order_by(OwnerChange.at, OwnerChange.id)
            )
        ).all()

    async def for_forecast(
        self, *, owner: str | None, closed_from: datetime, closed_before: datetime
    ) -> Sequence[Deal]:
        """Open deals, and deals closed in ``[closed_from, closed_before)``."""
        query = select(Deal).where(
            or_(
                Deal.stage.in_(OPEN_STAGES),
                and_(Deal.closed_at >= closed_from, Deal.closed_at < closed_before),
            )
        )
        if owner is not None:
            query = query.where(Deal.owner == owner)
        return (await self.session.scalars(query)).all()

    async def erase_lead(self, lead_id: str, erased_at: datetime) -> None:
        """Null the personal data on every deal of the lead; amounts and stages stay."""
        await self.session.execute(
            update(Deal)
            .where(Deal.lead_id == lead_id)
            .values(name=None, company=None, close_reason=None, notes=None, erased_at=erased_at)
        )
        if await self.session.get(ErasedLead, lead_id) is None:
            self.session.add(ErasedLead(lead_id=lead_id, erased_at=erased_at))

    async def is_erased(self, lead_id: str) -> bool:
        return await self.session.get(ErasedLead, lead_id) is not None


class QuotaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, rep_id: str, period: str) -> Quota | None:
        return await self.session.get(Quota, (rep_id, period), with_for_update=True)

    def add(self, quota: Quota) -> None:
        self.session.add(quota)

    async def for_periods(self, *, owner: str | None, periods: Sequence[str]) -> Sequence[Quota]:
        query = select(Quota).where(Quota.period.in_(periods))
        if owner is not None:
            query = query.where(Quota.rep_id == owner)
        return (await self.session.scalars(query)).all()
