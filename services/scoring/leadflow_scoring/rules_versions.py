"""Storing and loading versions of the scoring rules; version 1 is the shipped default.

Every event is scored under the rules in force, so loading them must be cheap: a stored
version never changes, so its parsed rules are cached by version number for the life of
the process, and each transaction reads only the highest version number (once). A new
version (a PUT here or on another replica) is a new number: the next transaction misses
the cache and parses it. Only committed versions enter the cache: a transaction that
stores a version never caches, so a rolled-back version number cannot hide the version
that later takes the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_scoring.models import RulesVersionRow
from leadflow_scoring.repository import RulesRepository
from leadflow_scoring.rules import ScoringRules, default_rules
from leadflow_shared.errors import Conflict
from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime

SYSTEM_AUTHOR = "system"

# session.info keys: the version this transaction reads, and "this transaction stored one".
_IN_FORCE = "leadflow_scoring.rules_in_force"
_STORED = "leadflow_scoring.rules_stored"


@dataclass(frozen=True)
class RulesVersion:
    version: int
    rules: ScoringRules
    created_at: datetime
    created_by: str


# (database URL, version) -> parsed rules; the URL keeps databases in one process apart.
_parsed: dict[tuple[URL, int], RulesVersion] = {}


def _version_of(row: RulesVersionRow) -> RulesVersion:
    return RulesVersion(
        version=row.version,
        rules=ScoringRules.model_validate(row.document),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _remember(session: AsyncSession, rules: RulesVersion) -> RulesVersion:
    session.info[_IN_FORCE] = (session.sync_session.get_transaction(), rules)
    return rules


async def current_rules(session: AsyncSession) -> RulesVersion:
    """The rules in force (the highest version), storing the default first if there are none.

    The start hook stores the default before consumers start; storing it here too covers a
    database emptied while running. Costs one statement per transaction when the version
    is cached.
    """
    known = session.info.get(_IN_FORCE)
    if known is not None and known[0] is session.sync_session.get_transaction():
        rules: RulesVersion = known[1]
        return rules
    repo = RulesRepository(session)
    version = await repo.current_version()
    if version is None:
        return await store_rules(session, default_rules(), SYSTEM_AUTHOR)
    key = (session.get_bind().engine.url, version)
    cached = _parsed.get(key)
    if cached is not None:
        return _remember(session, cached)
    row = await repo.get(version)
    assert row is not None  # versions are never deleted
    loaded = _version_of(row)
    if not session.info.get(_STORED):
        _parsed[key] = loaded
    return _remember(session, loaded)


async def store_rules(session: AsyncSession, rules: ScoringRules, created_by: str) -> RulesVersion:
    """Store ``rules`` as the next version; 409 if another writer took that version first."""
    session.info[_STORED] = True
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
    return _remember(session, _version_of(row))


async def seed_default_rules(runtime: ServiceRuntime) -> None:
    """Start hook: store the shipped default as version 1 when the database has no rules."""
    try:
        async with runtime.db.transaction() as session:
            await current_rules(session)
    except Conflict:
        pass  # another replica seeded it at the same moment
