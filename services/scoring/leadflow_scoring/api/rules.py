"""``/v1/scoring/rules``: the rules in force; managers store new versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from leadflow_scoring.rules import ScoringRules
from leadflow_scoring.rules_versions import RulesVersion, current_rules, store_rules
from leadflow_scoring.schemas import RulesVersionOut
from leadflow_shared.auth import CurrentPrincipal, Principal, require_roles
from leadflow_shared.service import SessionDep

router = APIRouter(prefix="/v1/scoring/rules", tags=["rules"])

Manager = Annotated[Principal, Depends(require_roles("manager"))]


def _out(version: RulesVersion) -> RulesVersionOut:
    return RulesVersionOut(
        version=version.version,
        rules=version.rules,
        created_at=version.created_at,
        created_by=version.created_by,
    )


@router.get("", response_model=RulesVersionOut)
async def get_rules(session: SessionDep, principal: CurrentPrincipal) -> RulesVersionOut:
    return _out(await current_rules(session))


@router.put("", response_model=RulesVersionOut)
async def put_rules(
    rules: ScoringRules, session: SessionDep, principal: Manager
) -> RulesVersionOut:
    """Store ``rules`` (the body is the rules document) as the next version.

    Existing scores are not recomputed: they keep the ``rules_version`` they were scored
    with, and the next event for a lead scores it under the new version. Rescoring every
    lead on a rules change is a later issue.
    """
    return _out(await store_rules(session, rules, created_by=principal.sub))
