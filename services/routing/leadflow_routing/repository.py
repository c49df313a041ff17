"""Every query routing makes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Table, and_, bindparam, func, insert, or_, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.decisions import TeamState
from leadflow_routing.models import (
    ConfigSnapshot,
    ConfigVersion,
    Decision,
    Rep,
    RepCounter,
    RoutedLead,
    RuleSetVersion,
)
from leadflow_routing.strategies import RotationStats
from leadflow_routing.team.availability import RepView, absences, rep_snapshot
from leadflow_shared.ids import new_id, utcnow

# Open work per role; an account manager keeps every account, so "am" has no filter.
OPEN_STATUSES = {"sdr": ("assigned", "accepted"), "ae": ("qualified",)}
# A lead nobody of that role could take yet; the timer (and directory changes) retry it.
WAITING = {"sdr": "waiting_for_rep", "ae": "waiting_for_ae", "am": "waiting_for_am"}


counters: Table = RepCounter.__table__  # type: ignore[assignment]
config_version: Table = ConfigVersion.__table__  # type: ignore[assignment]
reps: Table = Rep.__table__  # type: ignore[assignment]
REP_VIEW_COLUMNS = [
    reps.c[name]
    for name in (
        "id",
        "role",
        "team",
        "territories",
        "segments",
        "capacity_per_day",
        "weight",
        "working_hours",
        "out_of_office",
        "out_of_office_until",
        "out_of_office_periods",
        "active",
        "manager",
    )
]
CONFIG_ROW = 1
# session.info key: the transaction that holds the decision lock.
_LOCKED_IN = "leadflow.routing.locked_in"


class CounterChange(NamedTuple):
    """``value`` (a delta, e.g. -1) added to one counter of ``rep_counters`` (see
    :class:`RepCounter`); ``last_at``, when given, becomes the counter's time."""

    kind: str
    scope: str
    rep_id: str
    value: int
    last_at: datetime | None = None


def _counter_upsert(dialect_insert: Any) -> Any:
    statement = dialect_insert(counters)
    return statement.on_conflict_do_update(
        index_elements=[counters.c.kind, counters.c.scope, counters.c.rep_id],
        set_={
            "value": counters.c.value + statement.excluded.value,
            "last_at": func.coalesce(statement.excluded.last_at, counters.c.last_at),
        },
    )


# The hot path's statements, built once (building costs more CPU than SQLite's execution).
_LEAD = select(RoutedLead).where(RoutedLead.id == bindparam("lead_id"))
_LEAD_FOR_UPDATE = _LEAD.with_for_update()
_ADD_DECISION = insert(Decision)
_TEAM_STATE = (
    select(
        config_version.c.version,
        counters.c.kind,
        counters.c.scope,
        counters.c.rep_id,
        counters.c.value,
        counters.c.last_at,
    )
    .select_from(
        config_version.outerjoin(
            counters,
            or_(
                counters.c.kind.in_(("rotation", "credit")),
                and_(counters.c.kind == "assigned_on", counters.c.scope == bindparam("day")),
                and_(counters.c.kind == "open", counters.c.scope == bindparam("role")),
            ),
        )
    )
    .where(config_version.c.id == CONFIG_ROW)
)
_ADD_TO_COUNTERS = {
    "postgresql": _counter_upsert(postgresql.insert),
    "sqlite": _counter_upsert(sqlite.insert),
}


class RoutingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- leads ---------------------------------------------------------------------------
    async def lead(self, lead_id: str, *, for_update: bool = False) -> RoutedLead | None:
        query = _LEAD_FOR_UPDATE if for_update else _LEAD
        return await self.session.scalar(query, {"lead_id": lead_id})

    def add(self, row: RoutedLead | Rep | RuleSetVersion) -> None:
        self.session.add(row)

    async def add_decision(self, values: dict[str, object]) -> None:
        """Append to a lead's history: one insert, nothing for the ORM to track or flush (and
        no autoflush: the lead's pending changes are written once, later)."""
        with self.session.no_autoflush:
            await self.session.execute(_ADD_DECISION, values)

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

    async def waiting(
        self, statuses: Sequence[str] = tuple(WAITING.values()), limit: int = 100
    ) -> list[RoutedLead]:
        """Leads waiting for a free rep (every role: SDR, AE and AM), longest untried first,
        claimed (``SKIP LOCKED``: another replica's timer takes others)."""
        rows = await self.session.scalars(
            select(RoutedLead)
            .where(RoutedLead.status.in_(statuses))
            .order_by(RoutedLead.updated_at, RoutedLead.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list(rows)

    async def waiting_leads(self, statuses: Sequence[str], limit: int) -> list[RoutedLead]:
        """Waiting leads to show (no lock)."""
        rows = await self.session.scalars(
            select(RoutedLead)
            .where(RoutedLead.status.in_(statuses))
            .order_by(RoutedLead.id)
            .limit(limit)
        )
        return list(rows)

    async def last_waits(self, lead_ids: Sequence[str]) -> dict[str, Decision]:
        """The latest ``waiting`` decision of each lead (the reason it waits)."""
        if not lead_ids:
            return {}
        rows = await self.session.scalars(
            select(Decision)
            .where(Decision.lead_id.in_(lead_ids), Decision.kind == "waiting")
            .order_by(Decision.at, Decision.id)
        )
        return {d.lead_id: d for d in rows}

    async def mql_leads(
        self, limit: int, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[RoutedLead]:
        """MQLs with a known profile, not erased, by capture time (``start`` inclusive,
        ``end`` exclusive), oldest first."""
        query = select(RoutedLead).where(
            RoutedLead.mql.is_(True),
            RoutedLead.profile_known.is_(True),
            RoutedLead.erased.is_(False),
        )
        if start is not None:
            query = query.where(RoutedLead.captured_at >= start)
        if end is not None:
            query = query.where(RoutedLead.captured_at < end)
        rows = await self.session.scalars(
            query.order_by(RoutedLead.captured_at, RoutedLead.id).limit(limit)
        )
        return list(rows)

    async def leads_by_id(self, lead_ids: Sequence[str]) -> list[RoutedLead]:
        if not lead_ids:
            return []
        rows = await self.session.scalars(
            select(RoutedLead).where(RoutedLead.id.in_(sorted(set(lead_ids))))
        )
        return list(rows)

    async def first_decisions(self, role: str, lead_ids: Sequence[str]) -> dict[str, Decision]:
        """Each lead's first ``assigned`` decision for ``role``."""
        first: dict[str, Decision] = {}
        ids = sorted(set(lead_ids))
        for at in range(0, len(ids), 500):
            rows = await self.session.scalars(
                select(Decision)
                .where(
                    Decision.lead_id.in_(ids[at : at + 500]),
                    Decision.role == role,
                    Decision.kind == "assigned",
                )
                .order_by(Decision.at, Decision.id)
            )
            for decision in rows:
                first.setdefault(decision.lead_id, decision)
        return first

    async def first_decisions_in(
        self, role: str, start: datetime | None, end: datetime | None, limit: int
    ) -> list[Decision]:
        """The first ``assigned`` decision for ``role`` of each lead whose first one falls
        in the period, oldest first, at most ``limit``."""
        firsts = (
            select(Decision.lead_id, func.min(Decision.at).label("first_at"))
            .where(Decision.role == role, Decision.kind == "assigned")
            .group_by(Decision.lead_id)
            .subquery()
        )
        query = select(Decision).join(
            firsts,
            and_(Decision.lead_id == firsts.c.lead_id, Decision.at == firsts.c.first_at),
        )
        query = query.where(Decision.role == role, Decision.kind == "assigned")
        if start is not None:
            query = query.where(firsts.c.first_at >= start)
        if end is not None:
            query = query.where(firsts.c.first_at < end)
        rows = await self.session.scalars(query.order_by(Decision.at, Decision.id))
        first: dict[str, Decision] = {}
        for decision in rows:
            first.setdefault(decision.lead_id, decision)  # two at the same instant: one
        return list(first.values())[:limit]

    # --- team ----------------------------------------------------------------------------
    async def rep(self, rep_id: str) -> Rep | None:
        return await self.session.get(Rep, rep_id)

    async def reps(self, role: str | None = None) -> list[Rep]:
        query = select(Rep).order_by(Rep.id)
        if role is not None:
            query = query.where(Rep.role == role)
        return list(await self.session.scalars(query))

    async def all_reps(self) -> list[RepView]:
        """The whole directory as plain views (Core: nothing enters the identity map)."""
        rows = await self.session.execute(select(*REP_VIEW_COLUMNS).order_by(reps.c.id))
        return [
            RepView(
                **{
                    **row._mapping,
                    "territories": tuple(row.territories),
                    "segments": tuple(row.segments),
                    "out_of_office_periods": absences(row.out_of_office_periods),
                }
            )
            for row in rows
        ]

    # --- counters ------------------------------------------------------------------------
    async def team_state(self, role: str, day: str) -> tuple[str, TeamState]:
        """The configuration version and every counter a decision for ``role`` on ``day``
        needs (``day``: the UTC day, as ``counters.day_scope``), in one statement."""
        version: str | None = None
        assigned: dict[str, int] = {}
        load: dict[str, int] = {}
        rotation: dict[str, dict[str, RotationStats]] = {}
        credit: dict[str, dict[str, int]] = {}
        rows = await self.session.execute(_TEAM_STATE, {"role": role, "day": day})
        for row in rows:
            version = row.version
            if row.kind == "rotation":
                rotation.setdefault(row.scope, {})[row.rep_id] = RotationStats(
                    row.value, row.last_at
                )
            elif row.kind == "credit":
                credit.setdefault(row.scope, {})[row.rep_id] = row.value
            elif row.kind == "assigned_on":
                assigned[row.rep_id] = row.value
            elif row.kind == "open":
                load[row.rep_id] = row.value
        if version is None:
            raise RuntimeError("config_version has no row: run routing's migrations")
        return version, TeamState(
            assigned_today=assigned, open_load=load, rotation=rotation, credit=credit
        )

    async def add_to_counters(self, changes: Sequence[CounterChange]) -> None:
        """Add each change's delta to its counter (created at the delta), in one execution.

        Takes the decision lock first (PostgreSQL), so counter rows are always locked after
        it and never in an order that could deadlock with a decision."""
        if not changes:
            return
        await self.lock_decisions()
        dialect = self.session.get_bind().dialect.name
        with self.session.no_autoflush:  # nothing here depends on pending ORM changes
            await self.session.execute(_ADD_TO_COUNTERS[dialect], [c._asdict() for c in changes])

    async def lock_decisions(self) -> None:
        """Serialise routing decisions across replicas (a PostgreSQL advisory lock held to
        the end of the transaction), so no decision reads counters that a concurrent one is
        about to change. Taken once per transaction. One lock for every role: a batch may
        decide for several roles, and two locks taken in different orders could deadlock.
        SQLite needs none: a transaction that writes holds the database's write lock."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        sync = self.session.sync_session
        current = sync.get_nested_transaction() or sync.get_transaction()
        if current is not None and self.session.info.get(_LOCKED_IN) is current:
            return
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "routing:decisions"}
        )
        # Held until this transaction ends: a new transaction (or savepoint) locks again.
        self.session.info[_LOCKED_IN] = sync.get_nested_transaction() or sync.get_transaction()

    async def config_changed(self) -> None:
        """Mark a change of the rules or the directory (same transaction as the change), so
        every replica's cached copy is refreshed at its next decision.

        Takes the decision lock first, so no decision runs between the change and its
        version, and flushes the change, so a decision later in this transaction (which
        reads without autoflush) sees it."""
        await self.lock_decisions()
        await self.session.flush()
        dialect = self.session.get_bind().dialect.name
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        version, changed_at = new_id(), utcnow()
        values = {"id": CONFIG_ROW, "version": version, "changed_at": changed_at}
        statement = upsert(config_version).values(values)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[config_version.c.id],
                set_={"version": statement.excluded.version, "changed_at": changed_at},
            )
        )
        rules = await self.current_rules()
        self.session.add(
            ConfigSnapshot(
                version=version,
                rules_version=rules.version if rules else 0,
                reps=[rep_snapshot(rep) for rep in await self.all_reps()],
                created_at=changed_at,
            )
        )

    async def snapshot(self, version: str) -> ConfigSnapshot | None:
        return await self.session.get(ConfigSnapshot, version)

    # --- rules ---------------------------------------------------------------------------
    async def rules_version(self, version: int) -> RuleSetVersion | None:
        return await self.session.get(RuleSetVersion, version)

    async def current_rules(self) -> RuleSetVersion | None:
        return await self.session.scalar(
            select(RuleSetVersion).order_by(RuleSetVersion.version.desc()).limit(1)
        )
