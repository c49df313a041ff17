"""The Core statements of the event paths, built once per dialect.

They run for every event or run of events: building a statement (and its cache key) costs
more Python than executing it, so each is built once with bind parameters and executed with
values — several rows as one executemany, lead ids as an expanding ``IN``. Table columns,
not ORM attributes: an ORM-enabled statement goes through the ORM's execution step every
time. SQLite and PostgreSQL share the shape (``INSERT … ON CONFLICT``); only the dialect's
``insert`` differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    BindParameter,
    Executable,
    Table,
    bindparam,
    func,
    literal_column,
    null,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from leadflow_scoring.models import (
    EngagementRow,
    ErasedLead,
    LeadOwner,
    LeadProfileRow,
    LeadScoreRow,
)
from leadflow_scoring.scoring import PROFILE_FIELDS

# The same key for one lead and for many: hashtextextended of the lead id.
LOCK_LEAD = text("SELECT pg_advisory_xact_lock(hashtextextended(:lead_id, 0))")
# Many leads in one statement, in the order given (sorted by the caller): transactions
# that lock overlapping runs take the shared keys in the same order.
LOCK_LEADS = text(
    "SELECT pg_advisory_xact_lock(hashtextextended(t.lead_id, 0)) "
    "FROM unnest(CAST(:lead_ids AS TEXT[])) WITH ORDINALITY AS t(lead_id, n) ORDER BY t.n"
)

profiles = cast(Table, LeadProfileRow.__table__)
engagements = cast(Table, EngagementRow.__table__)
scores = cast(Table, LeadScoreRow.__table__)
owners = cast(Table, LeadOwner.__table__)
tombstones = cast(Table, ErasedLead.__table__)

_LEAD_IDS: BindParameter[str] = bindparam("lead_ids", expanding=True)

FIT_PROFILES = select(profiles.c.lead_id, *(profiles.c[name] for name in PROFILE_FIELDS)).where(
    profiles.c.lead_id.in_(_LEAD_IDS)
)
# Everything scoring holds about some leads besides their profiles, in one read: one row
# per engagement (type, occurred_at), per score (when it became an MQL, or NULL), per
# recycled score (when routing last recycled the lead) and per erasure tombstone, told
# apart by ``fact``.
LEAD_FACTS = union_all(
    select(
        engagements.c.lead_id,
        literal_column("'engagement'").label("fact"),
        engagements.c.type,
        engagements.c.occurred_at.label("at"),
    ).where(engagements.c.lead_id.in_(_LEAD_IDS)),
    select(scores.c.lead_id, literal_column("'score'"), null(), scores.c.mql_at).where(
        scores.c.lead_id.in_(_LEAD_IDS)
    ),
    select(scores.c.lead_id, literal_column("'recycled'"), null(), scores.c.recycled_at).where(
        scores.c.lead_id.in_(_LEAD_IDS), scores.c.recycled_at.is_not(None)
    ),
    select(tombstones.c.lead_id, literal_column("'erased'"), null(), null()).where(
        tombstones.c.lead_id.in_(_LEAD_IDS)
    ),
)
# A recycled lead is no MQL any more: renewed engagement can make it one again (one
# executemany for a run of recycles; a lead not scored yet has no row and is left alone).
RESET_MQL = (
    update(scores)
    .where(scores.c.lead_id == bindparam("b_lead_id"))
    .values(mql=False, mql_at=None, recycled_at=bindparam("b_recycled_at"))
)
ERASED_AMONG = select(tombstones.c.lead_id).where(tombstones.c.lead_id.in_(_LEAD_IDS))


@dataclass(frozen=True)
class Upserts:
    store_profiles: Executable
    store_engagements: Executable
    store_scores: Executable
    set_owners: Executable
    add_tombstone: Executable


def dialect_insert(dialect: str) -> Any:
    """The dialect's ``insert`` (both have ``on_conflict_do_*`` and ``excluded``)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


@cache
def upserts(dialect: str) -> Upserts:
    insert = dialect_insert(dialect)

    profile_insert = insert(profiles)
    store_profiles = profile_insert.on_conflict_do_update(
        index_elements=["lead_id"],
        set_={c: profile_insert.excluded[c] for c in (*PROFILE_FIELDS, "updated_at")},
    )

    # An engagement counts once: a known id is skipped, and not returned.
    store_engagements = (
        insert(engagements)
        .on_conflict_do_nothing(index_elements=["engagement_id"])
        .returning(engagements.c.engagement_id)
    )

    score_insert = insert(scores)
    new = score_insert.excluded
    store_scores = score_insert.on_conflict_do_update(
        index_elements=["lead_id"],
        set_={
            "score": new.score,
            "fit": new.fit,
            "engagement": new.engagement,
            "grade": new.grade,
            "fit_grade": new.fit_grade,
            "engagement_level": new.engagement_level,
            "mql": new.mql,
            # Set the first time the lead becomes an MQL; cleared only by a recycle.
            "mql_at": func.coalesce(scores.c.mql_at, new.mql_at),
            "explanation": new.explanation,
            "rules_version": new.rules_version,
            "scored_at": new.scored_at,
        },
    )

    owner_insert = insert(owners)
    set_owners = owner_insert.on_conflict_do_update(
        index_elements=["lead_id", "role"], set_={"owner": owner_insert.excluded.owner}
    )

    add_tombstone = insert(tombstones).on_conflict_do_nothing(index_elements=["lead_id"])

    return Upserts(
        store_profiles=store_profiles,
        store_engagements=store_engagements,
        store_scores=store_scores,
        set_owners=set_owners,
        add_tombstone=add_tombstone,
    )
