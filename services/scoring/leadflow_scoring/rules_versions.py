"""Storing and loading versions of the scoring rules; version 1 is the shipped default."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import RulesVersionRow
from leadflow_scoring.repository import RulesRepository
from leadflow_scoring.rules import ScoringRules, default_rules
from leadflow_shared.errors import Conflict
from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime

SYSTEM_AUTHOR = "system"


@dataclass(frozen=True)
class RulesVersion:
    version: int
    rules: ScoringRules
    created_at: datetime
    created_by: str


def _version_of(row: RulesVersionRow) -> RulesVersion:
    return RulesVersion(
        version=row.version,
        rules=ScoringRules.model_validate(row.document),
        created_at=row.created_at,
        created_by=row.created_by,
    )


async def current_rules(session: AsyncSession) -> RulesVersion:
    """The rules in force (the highest version), storing the default first if there are none.

    Consumers start before the start hook runs, so an event may be scored before seeding.
    """
    row = await RulesRepository(session).current()
    if row is None:
        return await store_rules(session, default_rules(), SYSTEM_AUTHOR)
    return _version_of(row)


async def store_rules(session: AsyncSession, rules: ScoringRules, created_by: str) -> RulesVersion:
    """Store ``rules`` as the next version; 409 if another writer took that version first."""
    repo = RulesRepository(session)
    row = RulesVersionRow(
        version=await repo.next_version(),
        document=rules.model_dump(mode="json"),
        created_at=utcnow(),
        created_by=created_by[:100],
    )
    try:
        await repo.add(row)
    except IntegrityError as exc:
        raise Conflict(
            f"rules version {row.version} was stored concurrently; read the rules and retry"
        ) from exc
    return _version_of(row)


async def seed_default_rules(runtime: ServiceRuntime) -> None:
    """Start hook: store the shipped default as version 1 when the database has no rules."""
    try:
        async with runtime.db.transaction() as session:
            await current_rules(session)
    except Conflict:
        pass  # another replica seeded it at the same moment
