"""Every query scoring makes.

The event paths run prebuilt Core statements (:mod:`leadflow_scoring.statements`): upserts
with ``RETURNING`` and multi-row inserts, no identity map, no flush.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import (
    EngagementRow,
    ErasedLead,
    LeadOwner,
    LeadProfileRow,
    LeadScoreRow,
    RulesVersionRow,
)
from leadflow_scoring.scoring import PROFILE_FIELDS, EngagementFact, FitProfile, ScoreResult
from leadflow_scoring.statements import LOCK_LEAD, HotStatements, dialect_insert, hot_statements


class LeadRepository:
    """The per-lead read model: profile, engagements, score, owners, erasure tombstone."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    @property
    def _hot(self) -> HotStatements:
        return hot_statements(self.dialect)

    async def lock(self, lead_id: str) -> None:
        """Serialise this transaction with others touching the same lead.

        A lead's profile and engagements arrive on different topics, which different group
        members may handle at once; without the lock each could score without the other's
        uncommitted fact. The lock is held until commit (a whole fetched batch); taking it
        again in the same transaction is free. SQLite needs none: the service already
        serialises its writers.
        """
        if self.dialect == "postgresql":
            await self.session.execute(LOCK_LEAD, {"lead_id": lead_id})

    async def store_profile(self, lead_id: str, profile: FitProfile, now: datetime) -> bool:
        """Replace the lead's profile in one upsert; False (nothing stored) if it is erased."""
        values: dict[str, Any] = {name: getattr(profile, name) for name in PROFILE_FIELDS}
        values.update(
            lead_id=lead_id, utm=dict(profile.utm), custom=dict(profile.custom), updated_at=now
        )
        result = await self.session.execute(self._hot.store_profile, values)
        return result.first() is not None

    async def fit_profile(self, lead_id: str) -> FitProfile | None:
        row = (await self.session.execute(self._hot.fit_profile, {"lead_id": lead_id})).first()
        if row is None:
            return None
        profile = row._asdict()
        profile.update(utm=dict(profile["utm"]), custom=dict(profile["custom"]))
        return FitProfile(**profile)

    async def engagement_facts(self, lead_id: str) -> list[EngagementFact]:
        rows = await self.session.execute(self._hot.engagement_facts, {"lead_id": lead_id})
        return [EngagementFact(type=kind, occurred_at=at) for kind, at in rows]

    async def store_engagement(
        self, engagement_id: str, lead_id: str, kind: str, occurred_at: datetime
    ) -> bool:
        """Store an engagement in one statement; False when its id is known already (an
        engagement counts once) or the lead is erased."""
        values = {
            "engagement_id": engagement_id,
            "lead_id": lead_id,
            "type": kind,
            "occurred_at": occurred_at,
        }
        result = await self.session.execute(self._hot.store_engagement, values)
        return result.first() is not None

    async def store_score(
        self, lead_id: str, result: ScoreResult, rules_version: int, now: datetime
    ) -> tuple[bool, bool]:
        """Upsert the lead's score; returns ``(mql, became_mql)``.

        ``mql_at`` is set once, the first time the threshold is met: the lead became an
        MQL now exactly when the stored ``mql_at`` is this ``now``.
        """
        values = {
            "lead_id": lead_id,
            "score": result.score,
            "fit": result.fit,
            "engagement": result.engagement,
            "grade": result.grade,
            "mql": result.meets_threshold,
            "mql_at": now if result.meets_threshold else None,
            "explanation": [factor.model_dump() for factor in result.explanation],
            "rules_version": rules_version,
            "scored_at": now,
        }
        mql_at = (await self.session.execute(self._hot.store_score, values)).scalar_one()
        return mql_at is not None, result.meets_threshold and mql_at == now

    async def score(self, lead_id: str) -> LeadScoreRow | None:
        return await self.session.get(LeadScoreRow, lead_id)

    async def owners(self, lead_id: str) -> dict[str, str]:
        rows = await self.session.scalars(select(LeadOwner).where(LeadOwner.lead_id == lead_id))
        return {row.role: row.owner for row in rows}

    async def set_owners(self, owners: Iterable[tuple[str, str, str]]) -> None:
        """Record ``(lead_id, role, owner)`` assignments in order, in at most two statements:
        the last owner per lead and role wins; erased leads are left out."""
        latest: dict[tuple[str, str], str] = {}
        for lead_id, role, owner in owners:
            latest[(lead_id, role)] = owner
        erased = await self.erased_among({lead_id for lead_id, _ in latest})
        rows = [
            {"lead_id": lead_id, "role": role, "owner": owner}
            # Sorted: concurrent writers lock rows in one order.
            for (lead_id, role), owner in sorted(latest.items())
            if lead_id not in erased
        ]
        if not rows:
            return
        insert = dialect_insert(self.dialect)(LeadOwner.__table__).values(rows)
        await self.session.execute(
            insert.on_conflict_do_update(
                index_elements=["lead_id", "role"],
                set_={"owner": insert.excluded.owner},
            )
        )

    async def erased_among(self, lead_ids: Set[str]) -> set[str]:
        if not lead_ids:
            return set()
        erased = cast(Table, ErasedLead.__table__)
        rows = await self.session.scalars(
            select(erased.c.lead_id).where(erased.c.lead_id.in_(lead_ids))
        )
        return set(rows)

    async def erase(self, lead_id: str, erased_at: datetime) -> None:
        """Delete everything held about the lead; keep only an id tombstone."""
        for model in (LeadProfileRow, EngagementRow, LeadScoreRow, LeadOwner):
            await self.session.execute(delete(model).where(model.lead_id == lead_id))
        await self.session.execute(
            dialect_insert(self.dialect)(ErasedLead.__table__)
            .values(lead_id=lead_id, erased_at=erased_at)
            .on_conflict_do_nothing(index_elements=["lead_id"])
        )


class RulesRepository:
    """Versions of the scoring rules; the highest version is the one in force."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def current_version(self) -> int | None:
        """The version in force: one read of the primary key's index, nothing parsed."""
        return await self.session.scalar(select(func.max(RulesVersionRow.version)))

    async def get(self, version: int) -> RulesVersionRow | None:
        return await self.session.get(RulesVersionRow, version)

    async def next_version(self) -> int:
        return (await self.current_version() or 0) + 1

    async def add(self, row: RulesVersionRow) -> None:
        """Insert and flush, so a concurrent writer of the same version fails here."""
        self.session.add(row)
        await self.session.flush()
