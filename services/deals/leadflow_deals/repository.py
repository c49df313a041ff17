"""Every query deals makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Executable,
    Table,
    and_,
    bindparam,
    case,
    delete,
    exists,
    insert,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_deals.models import (
    Deal,
    ErasedLead,
    LeadQualification,
    OwnerChange,
    Quota,
    StageChange,
)
from leadflow_deals.stages import OPEN_STAGES
from leadflow_shared.ids import new_id


@cache
def _open_deal_statement(dialect: str) -> Executable:
    """Open a deal unless the lead has an open one (the partial unique index decides), with
    the company left out if the lead is erased; returns the company stored. Built once."""
    deals = cast(Table, Deal.__table__)
    # Table columns, not ORM attributes: no ORM execution step on every run.
    tombstones = cast(Table, ErasedLead.__table__)
    erased = exists().where(tombstones.c.lead_id == bindparam("lead_id"))
    now = bindparam("now", type_=deals.c.created_at.type)
    company = case((erased, null()), else_=bindparam("company", type_=deals.c.company.type))
    source = select(
        bindparam("id", type_=deals.c.id.type),
        bindparam("lead_id", type_=deals.c.lead_id.type),
        bindparam("owner", type_=deals.c.owner.type),
        bindparam("stage", type_=deals.c.stage.type),
        bindparam("currency", type_=deals.c.currency.type),
        company,
        company,
        now,
        now,
        case((erased, now), else_=null()),
    )
    columns = [
        "id",
        "lead_id",
        "owner",
        "stage",
        "currency",
        "name",
        "company",
        "created_at",
        "updated_at",
        "erased_at",
    ]
    statement: Executable = (
        _dialect_insert(dialect)(deals)
        .from_select(columns, source)
        .on_conflict_do_nothing(
            index_elements=[deals.c.lead_id], index_where=deals.c.closed_at.is_(None)
        )
        .returning(deals.c.company)
    )
    return statement


_deals = cast(Table, Deal.__table__)
_STAGE_CHANGE = insert(cast(Table, StageChange.__table__))
_OWNER_CHANGE = insert(cast(Table, OwnerChange.__table__))
_OPEN_DEAL_OWNER = (
    select(_deals.c.id, _deals.c.owner)
    .where(_deals.c.lead_id == bindparam("lead_id"), _deals.c.closed_at.is_(None))
    .with_for_update()
)
_SET_OWNER = (
    update(_deals)
    .where(_deals.c.id == bindparam("deal_id"))
    .values(owner=bindparam("new_owner"), updated_at=bindparam("at"))
)


def _dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_nothing``)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class DealRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def open_deal(
        self,
        *,
        deal_id: str,
        lead_id: str,
        owner: str,
        stage: str,
        currency: str,
        company: str | None,
        now: datetime,
        opened_by: str,
    ) -> tuple[bool, str | None]:
        """Open a deal and record its first stage in two statements.

        Returns ``(opened, company)``: not opened when the lead has an open deal already;
        the company is None when the lead is erased.
        """
        dialect = self.session.get_bind().dialect.name
        values = {
            "id": deal_id,
            "lead_id": lead_id,
            "owner": owner,
            "stage": stage,
            "currency": currency,
            "company": company,
            "now": now,
        }
        row = (await self.session.execute(_open_deal_statement(dialect), values)).first()
        if row is None:
            return False, None
        await self.session.execute(
            _STAGE_CHANGE,
            {
                "id": new_id(),
                "deal_id": deal_id,
                "from_stage": None,
                "to_stage": stage,
                "at": now,
                "by": opened_by,
            },
        )
        return True, row.company

    def add(self, *rows: Deal | StageChange | OwnerChange) -> None:
        self.session.add_all(rows)

    async def get(self, deal_id: str, *, for_update: bool = False) -> Deal | None:
        """The deal; ``for_update`` locks its row until commit (concurrent edits queue)."""
        return await self.session.get(Deal, deal_id, with_for_update=for_update)

    async def open_deal_owner(self, lead_id: str) -> tuple[str, str] | None:
        """The lead's open deal as ``(deal id, owner)``, its row locked until commit."""
        row = (await self.session.execute(_OPEN_DEAL_OWNER, {"lead_id": lead_id})).first()
        return None if row is None else (row.id, row.owner)

    async def move_owner(
        self,
        deal_id: str,
        from_owner: str,
        to_owner: str,
        *,
        reason: str | None,
        by: str,
        at: datetime,
    ) -> None:
        """Give the deal to ``to_owner`` and record the change (two statements)."""
        change = {
            "id": new_id(),
            "deal_id": deal_id,
            "from_owner": from_owner,
            "to_owner": to_owner,
            "reason": reason,
            "at": at,
            "by": by,
        }
        await self.session.execute(_OWNER_CHANGE, change)
        await self.session.execute(
            _SET_OWNER, {"deal_id": deal_id, "new_owner": to_owner, "at": at}
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
        # One idempotent statement (a redelivered erasure finds the tombstone there).
        dialect = self.session.get_bind().dialect.name
        await self.session.execute(
            _dialect_insert(dialect)(ErasedLead.__table__)
            .values(lead_id=lead_id, erased_at=erased_at)
            .on_conflict_do_nothing(index_elements=["lead_id"])
        )

    async def is_erased(self, lead_id: str) -> bool:
        return await self.session.get(ErasedLead, lead_id) is not None

    async def keep_qualification(self, values: dict[str, Any]) -> None:
        """Store a lead's qualification; an older one than the stored never replaces it
        (one statement: an upsert guarded by ``qualified_at``)."""
        table = cast(Table, LeadQualification.__table__)
        dialect = self.session.get_bind().dialect.name
        stmt = _dialect_insert(dialect)(table).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["lead_id"],
            set_={
                name: stmt.excluded[name]
                for name in ("framework", "fields", "notes", "qualified_by", "qualified_at")
            },
            where=table.c.qualified_at <= stmt.excluded.qualified_at,
        )
        await self.session.execute(stmt)

    async def qualification(self, lead_id: str) -> LeadQualification | None:
        return await self.session.get(LeadQualification, lead_id)

    async def forget_qualification(self, lead_id: str) -> None:
        await self.session.execute(
            delete(LeadQualification).where(LeadQualification.lead_id == lead_id)
        )


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
