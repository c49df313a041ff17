"""``/v1/routing/rules``: the ordered, versioned rule set."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from leadflow_routing.configuration import current_rule_set
from leadflow_routing.models import RuleSetVersion
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.rules.document import RuleSet
from leadflow_routing.rules.versions import publish_rules
from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import InvalidInput
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/routing/rules", tags=["rules"])
Manager = Annotated[Principal, Depends(require_roles("manager"))]


class RuleSetOut(RuleSet):
    version: int
    created_at: datetime | None
    created_by: str | None


def _out(rules: RuleSet, row: RuleSetVersion | None) -> RuleSetOut:
    return RuleSetOut(
        **rules.model_dump(),
        version=row.version if row else 0,
        created_at=row.created_at if row else None,
        created_by=row.created_by if row else None,
    )


@router.get("", response_model=RuleSetOut)
async def get_rules(session: SessionDep, principal: Manager) -> RuleSetOut:
    """The rules in force (version 0 is the built-in default: every rep of each role)."""
    repo = RoutingRepository(session)
    return _out(await current_rule_set(repo), await repo.current_rules())


@router.put("", response_model=RuleSetOut)
async def put_rules(body: RuleSet, session: SessionDep, principal: Manager) -> RuleSetOut:
    """Replace the rules; they apply to the next decision. Reps named in pools must exist."""
    repo = RoutingRepository(session)
    known = {rep.id: rep.role for rep in await repo.reps()}
    for index, rule in enumerate(body.rules):
        for rep_id in rule.pool.reps or []:
            if known.get(rep_id) != rule.role:
                raise InvalidInput.field(
                    f"rules.{index}.pool.reps", f"{rep_id} is not a known {rule.role}"
                )
    return _out(body, await publish_rules(session, body, principal.sub))
