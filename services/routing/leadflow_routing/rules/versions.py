"""Publishing a new version of the rule set; it applies to the next decision."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.models import RuleSetVersion
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.rules.document import RuleSet
from leadflow_shared.ids import utcnow


async def publish_rules(session: AsyncSession, rules: RuleSet, by: str) -> RuleSetVersion:
    """Store ``rules`` as the next version and change the configuration version with it."""
    repo = RoutingRepository(session)
    current = await repo.current_rules()
    row = RuleSetVersion(
        version=(current.version if current else 0) + 1,
        document=rules.model_dump(mode="json"),
        created_at=utcnow(),
        created_by=by,
    )
    repo.add(row)
    await repo.config_changed()
    return row
