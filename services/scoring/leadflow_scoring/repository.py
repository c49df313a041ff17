"""Every query scoring makes.

The event paths run prebuilt Core statements (:mod:`leadflow_scoring.statements`) on sets
of leads: one statement per kind of read or write for a whole run of events, whatever its
length; no identity map, no flush.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring import statements
from leadflow_scoring.models import (
    EngagementRow,
    LeadOwner,
    LeadProfileRow,
    LeadScoreRow,
    RulesVersionRow,
)
from leadflow_scoring.scoring import PROFILE_FIELDS, EngagementFact, FitProfile
from leadflow_scoring.statements import Upserts, upserts


@dataclass
class LeadFacts:
    """What scoring holds about some leads besides their profiles."""

    # Each lead's engagements, oldest first (leads without any are absent).
    engagements: defaultdict[str, list[EngagementFact]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # When each scored lead first became an MQL (None: not yet); unscored leads absent.
    mql_since: dict[str, datetime | None] = field(default_factory=dict)
    # When routing last recycled each lead (leads never recycled are absent).
    recycled_at: dict[str, datetime] = field(default_factory=dict)
    erased: set[str] = field(default_factory=set)


class LeadRepository:
    """The per-lead read model: profile, engagements, score, owners, erasure tombstone."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    @property
    def _upserts(self) -> Upserts:
        return upserts(self.dialect)

    async def lock(self, *lead_ids: str) -> None:
        """Serialise this transaction with others touching the same leads.

        A lead's profile and engagements arrive on different topics, which different group
        members may handle at once; without the lock each could score without the other's
        uncommitted fact. Locks are held until commit (a whole fetched batch); taking one
        again in the same transaction is free. Several leads are locked in one statement,
        in sorted order. SQLite needs none: the service already serialises its writers.
        """
        if self.dialect != "postgresql" or not lead_ids:
            return
        if len(lead_ids) == 1:
            await self.session.execute(statements.LOCK_LEAD, {"lead_id": lead_ids[0]})
        else:
            keys = sorted(set(lead_ids))
            await self.session.execute(statements.LOCK_LEADS, {"lead_ids": keys})

    async def store_profiles(self, profiles: Mapping[str, FitProfile], now: datetime) -> None:
        """Replace each lead's profile (one executemany upsert)."""
        rows = [
            {
                **{name: getattr(profile, name) for name in PROFILE_FIELDS},
                "lead_id": lead_id,
                "utm": dict(profile.utm),
                "custom": dict(profile.custom),
                "updated_at": now,
            }
            for lead_id, profile in profiles.items()
        ]
        if rows:
            await self.session.execute(self._upserts.store_profiles, rows)

    async def fit_profiles(self, lead_ids: Collection[str]) -> dict[str, FitProfile]:
        """The stored profiles of those leads that have one."""
        rows = await self.session.execute(statements.FIT_PROFILES, {"lead_ids": list(lead_ids)})
        profiles = {}
        for row in rows:
            fields = row._asdict()
            lead_id = fields.pop("lead_id")
            fields.update(utm=dict(fields["utm"]), custom=dict(fields["custom"]))
            profiles[lead_id] = FitProfile(**fields)
        return profiles

    async def facts(self, lead_ids: Collection[str]) -> LeadFacts:
        """What is held about these leads besides their profiles (one statement)."""
        facts = LeadFacts()
        rows = await self.session.execute(statements.LEAD_FACTS, {"lead_ids": list(lead_ids)})
        for lead_id, fact, kind, at in rows:
            if fact == "engagement":
                facts.engagements[lead_id].append(EngagementFact(type=kind, occurred_at=at))
            elif fact == "score":
                facts.mql_since[lead_id] = at
            elif fact == "recycled":
                facts.recycled_at[lead_id] = at
            else:
                facts.erased.add(lead_id)
        for engagements in facts.engagements.values():
            engagements.sort(key=attrgetter("occurred_at"))
        return facts

    async def store_engagements(self, rows: Sequence[Mapping[str, Any]]) -> set[str]:
        """Store engagements (``engagement_id``, ``lead_id``, ``type``, ``occurred_at``);
        returns the ids stored now. An id known already is skipped: it counts once."""
        if not rows:
            return set()
        result = await self.session.execute(self._upserts.store_engagements, list(rows))
        return set(result.scalars())

    async def store_scores(self, rows: Collection[Mapping[str, Any]]) -> None:
        """Upsert scores, one row per lead (one executemany)."""
        if rows:
            await self.session.execute(self._upserts.store_scores, list(rows))

    async def reset_mql(self, recycles: Collection[tuple[str, datetime]]) -> None:
        """Clear the MQL state of recycled leads (``(lead_id, recycled_at)``, one
        executemany); their next scoring may make them an MQL again."""
        rows = [{"b_lead_id": lead_id, "b_recycled_at": at} for lead_id, at in recycles]
        if rows:
            await self.session.execute(statements.RESET_MQL, rows)

    async def score(self, lead_id: str) -> LeadScoreRow | None:
        return await self.session.get(LeadScoreRow, lead_id)

    async def owners(self, lead_id: str) -> dict[str, str]:
        rows = await self.session.scalars(select(LeadOwner).where(LeadOwner.lead_id == lead_id))
        return {row.role: row.owner for row in rows}

    async def set_owners(self, assignments: Collection[tuple[str, str, str]]) -> None:
        """Record ``(lead_id, role, owner)`` assignments given in event order, in at most two
        statements: the last owner per lead and role wins; erased leads are left out."""
        latest: dict[tuple[str, str], str] = {}
        for lead_id, role, owner in assignments:
            latest[(lead_id, role)] = owner
        erased = await self.erased_among({lead_id for lead_id, _ in latest})
        rows = [
            {"lead_id": lead_id, "role": role, "owner": owner}
            # Sorted: concurrent writers lock rows in one order.
            for (lead_id, role), owner in sorted(latest.items())
            if lead_id not in erased
        ]
        if rows:
            await self.session.execute(self._upserts.set_owners, rows)

    async def erased_among(self, lead_ids: Collection[str]) -> set[str]:
        if not lead_ids:
            return set()
        rows = await self.session.scalars(statements.ERASED_AMONG, {"lead_ids": list(lead_ids)})
        return set(rows)

    async def erase(self, lead_id: str, erased_at: datetime) -> None:
        """Delete everything held about the lead; keep only an id tombstone."""
        for model in (LeadProfileRow, EngagementRow, LeadScoreRow, LeadOwner):
            await self.session.execute(delete(model).where(model.lead_id == lead_id))
        await self.session.execute(
            self._upserts.add_tombstone, {"lead_id": lead_id, "erased_at": erased_at}
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
