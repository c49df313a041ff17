"""The Core statements of the per-event paths, built once per dialect.

Each runs for every event: building a statement (and its cache key) costs more Python
than executing it, so they are built once with bind parameters and executed with values.
SQLite and PostgreSQL share the shape (``INSERT … ON CONFLICT … RETURNING``); only the
dialect's ``insert`` differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, exists, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from leadflow_scoring.models import EngagementRow, ErasedLead, LeadProfileRow, LeadScoreRow
from leadflow_scoring.scoring import PROFILE_FIELDS

PROFILE_COLUMNS: tuple[str, ...] = ("lead_id", *PROFILE_FIELDS, "updated_at")
ENGAGEMENT_COLUMNS = ("engagement_id", "lead_id", "type", "occurred_at")

LOCK_LEAD = text("SELECT pg_advisory_xact_lock(hashtextextended(:lead_id, 0))")


@dataclass(frozen=True)
class HotStatements:
    store_profile: Executable
    fit_profile: Executable
    engagement_facts: Executable
    store_engagement: Executable
    store_score: Executable


def _not_erased() -> Any:
    # Table columns, not ORM attributes: an ORM-enabled statement goes through the ORM's
    # execution step every time.
    erased = cast(Table, ErasedLead.__table__)
    return ~exists().where(erased.c.lead_id == bindparam("lead_id"))


def _typed_params(table: Table, columns: tuple[str, ...]) -> Any:
    # A SELECT of typed parameters: the insert's source, guarded by the tombstone.
    return select(*(bindparam(c, type_=table.c[c].type) for c in columns)).where(_not_erased())


@cache
def hot_statements(dialect: str) -> HotStatements:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    profiles = cast(Table, LeadProfileRow.__table__)
    profile_insert = insert(profiles).from_select(
        list(PROFILE_COLUMNS), _typed_params(profiles, PROFILE_COLUMNS)
    )
    store_profile = profile_insert.on_conflict_do_update(
        index_elements=[profiles.c.lead_id],
        set_={c: profile_insert.excluded[c] for c in PROFILE_COLUMNS if c != "lead_id"},
    ).returning(profiles.c.lead_id)

    engagements = cast(Table, EngagementRow.__table__)
    store_engagement = (
        insert(engagements)
        .from_select(list(ENGAGEMENT_COLUMNS), _typed_params(engagements, ENGAGEMENT_COLUMNS))
        .on_conflict_do_nothing(index_elements=[engagements.c.engagement_id])
        .returning(engagements.c.engagement_id)
    )

    scores = cast(Table, LeadScoreRow.__table__)
    score_insert = insert(scores)
    new = score_insert.excluded
    # mql_at is set once, the first time the threshold is met, and never cleared.
    store_score = score_insert.on_conflict_do_update(
        index_elements=[scores.c.lead_id],
        set_={
            "score": new.score,
            "fit": new.fit,
            "engagement": new.engagement,
            "grade": new.grade,
            "mql": scores.c.mql_at.is_not(None) | new.mql,
            "mql_at": func.coalesce(scores.c.mql_at, new.mql_at),
            "explanation": new.explanation,
            "rules_version": new.rules_version,
            "scored_at": new.scored_at,
        },
    ).returning(scores.c.mql_at)

    return HotStatements(
        store_profile=store_profile,
        fit_profile=select(*(profiles.c[name] for name in PROFILE_FIELDS)).where(
            profiles.c.lead_id == bindparam("lead_id")
        ),
        engagement_facts=select(engagements.c.type, engagements.c.occurred_at)
        .where(engagements.c.lead_id == bindparam("lead_id"))
        .order_by(engagements.c.occurred_at),
        store_engagement=store_engagement,
        store_score=store_score,
    )


def dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_*`` and ``excluded``)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert
