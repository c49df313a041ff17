"""Every query console makes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_console.funnel import JourneyRow
from leadflow_console.models import Deal, LeadJourney, SlaBreach

# session.info keys: rows of this transaction by id (None: known not to exist yet).
_JOURNEYS = "console.journeys"
_DEALS = "console.deals"

# Stage name in the funnel -> column of the journey.
STAGE_COLUMNS = {
    "captured": LeadJourney.captured_at,
    "mql": LeadJourney.mql_at,
    "assigned": LeadJourney.sdr_assigned_at,
    "accepted": LeadJourney.accepted_at,
    "qualified": LeadJourney.qualified_at,
    "disqualified": LeadJourney.disqualified_at,
    "deal": LeadJourney.deal_at,
    "won": LeadJourney.won_at,
    "lost": LeadJourney.lost_at,
    "am_assigned": LeadJourney.am_assigned_at,
}


class JourneyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def preload(self, lead_ids: set[str]) -> None:
        """Load these leads' journeys in one statement; ``journey`` then needs no query."""
        known: dict[str, LeadJourney | None] = self.session.info.setdefault(_JOURNEYS, {})
        wanted = [lead_id for lead_id in lead_ids if lead_id not in known]
        if not wanted:
            return
        known.update(dict.fromkeys(wanted))
        for row in await self.session.scalars(
            select(LeadJourney).where(LeadJourney.lead_id.in_(wanted))
        ):
            known[row.lead_id] = row

    async def journey(self, lead_id: str) -> LeadJourney:
        """The lead's journey, created empty on first sight (events arrive in any order)."""
        known: dict[str, LeadJourney | None] = self.session.info.setdefault(_JOURNEYS, {})
        if lead_id in known:
            row = known[lead_id]
        else:
            row = await self.session.get(LeadJourney, lead_id)
        if row is None:
            row = LeadJourney(lead_id=lead_id)
            self.session.add(row)
        known[lead_id] = row
        return row

    async def find(self, lead_id: str) -> LeadJourney | None:
        return await self.session.get(LeadJourney, lead_id)

    async def cohort(
        self, window_from: datetime | None, window_to: datetime | None
    ) -> list[JourneyRow]:
        """Leads captured in ``[window_from, window_to)`` with their stage times."""
        breaches = (
            select(func.count(SlaBreach.id))
            .where(SlaBreach.lead_id == LeadJourney.lead_id)
            .correlate(LeadJourney)
            .scalar_subquery()
        )
        query = select(
            LeadJourney.lead_id,
            LeadJourney.source,
            LeadJourney.campaign,
            breaches.label("breaches"),
            *STAGE_COLUMNS.values(),
        ).where(LeadJourney.captured_at.is_not(None))
        if window_from is not None:
            query = query.where(LeadJourney.captured_at >= window_from)
        if window_to is not None:
            query = query.where(LeadJourney.captured_at < window_to)
        rows = (await self.session.execute(query)).all()
        return [
            JourneyRow(
                lead_id=row[0],
                source=row[1],
                campaign=row[2],
                sla_breaches=row[3],
                stages={
                    stage: value
                    for stage, value in zip(STAGE_COLUMNS, row[4:], strict=True)
                    if value is not None
                },
            )
            for row in rows
        ]

    async def open_leads_per_sdr(self) -> list[tuple[str, int, int]]:
        """(sdr, open leads, of which awaiting acceptance), the busiest first."""
        j = LeadJourney
        is_open = and_(
            j.sdr_owner.is_not(None),
            j.sdr_last_assigned_at.is_not(None),
            or_(j.sdr_last_closed_at.is_(None), j.sdr_last_closed_at < j.sdr_last_assigned_at),
        )
        awaiting = or_(
            j.sdr_last_accepted_at.is_(None), j.sdr_last_accepted_at < j.sdr_last_assigned_at
        )
        query = (
            select(
                j.sdr_owner,
                func.count(),
                func.count().filter(awaiting),
            )
            .where(is_open)
            .group_by(j.sdr_owner)
        )
        rows = (await self.session.execute(query)).all()
        # The filter excludes a null owner; `or ""` only narrows the type.
        return sorted(((r[0] or "", r[1], r[2]) for r in rows), key=lambda r: (-r[1], r[0]))

    async def accounts_per_am(self) -> list[tuple[str, int]]:
        query = (
            select(LeadJourney.am_owner, func.count())
            .where(LeadJourney.am_owner.is_not(None))
            .group_by(LeadJourney.am_owner)
        )
        rows = (await self.session.execute(query)).all()
        return sorted(((r[0] or "", r[1]) for r in rows), key=lambda r: (-r[1], r[0]))


class DealRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def preload(self, deal_ids: set[str]) -> None:
        """Load these deals in one statement; ``deal`` then needs no query."""
        known: dict[str, Deal | None] = self.session.info.setdefault(_DEALS, {})
        wanted = [deal_id for deal_id in deal_ids if deal_id not in known]
        if not wanted:
            return
        known.update(dict.fromkeys(wanted))
        for row in await self.session.scalars(select(Deal).where(Deal.deal_id.in_(wanted))):
            known[row.deal_id] = row

    async def deal(self, deal_id: str, lead_id: str, owner: str) -> Deal:
        known: dict[str, Deal | None] = self.session.info.setdefault(_DEALS, {})
        row = known[deal_id] if deal_id in known else await self.session.get(Deal, deal_id)
        if row is None:
            row = Deal(deal_id=deal_id, lead_id=lead_id, owner=owner)
            self.session.add(row)
        known[deal_id] = row
        return row

    async def open_deals_per_ae(self) -> list[tuple[str, int]]:
        query = (
            select(Deal.owner, func.count()).where(Deal.closed_at.is_(None)).group_by(Deal.owner)
        )
        rows = (await self.session.execute(query)).all()
        return sorted(((r[0], r[1]) for r in rows), key=lambda r: (-r[1], r[0]))


class SlaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, breach: SlaBreach) -> None:
        self.session.add(breach)

    async def exists(self, breach_id: str) -> bool:
        return await self.session.get(SlaBreach, breach_id) is not None

    async def newest(
        self, limit: int, window_from: datetime | None, window_to: datetime | None
    ) -> tuple[int, list[SlaBreach]]:
        """(total in the window, the newest ``limit`` of them)."""
        conditions = []
        if window_from is not None:
            conditions.append(SlaBreach.breached_at >= window_from)
        if window_to is not None:
            conditions.append(SlaBreach.breached_at < window_to)
        total = await self.session.scalar(select(func.count(SlaBreach.id)).where(*conditions))
        rows = await self.session.scalars(
            select(SlaBreach)
            .where(*conditions)
            .order_by(SlaBreach.breached_at.desc(), SlaBreach.id.desc())
            .limit(limit)
        )
        return total or 0, list(rows)
