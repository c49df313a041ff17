"""``/v1/scoring/rules``: the rules in force; managers store new versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadflow_scoring.preview import preview
from leadflow_scoring.rules import ScoringRules
from leadflow_scoring.rules_versions import RulesVersion, current_rules, store_rules
from leadflow_scoring.schemas import RulesVersionOut
from leadflow_shared.auth import CurrentPrincipal, Principal, require_roles
from leadflow_shared.ids import utcnow
from leadflow_shared.service import Runtime, SessionDep
from leadflow_shared.validation import without_read_only

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


class PreviewRequest(BaseModel):
    """``rules``: the draft document (as PUT takes it, or as GET returns it: ``version``,
    ``created_at`` and ``created_by`` beside it are ignored)."""

    model_config = ConfigDict(extra="forbid")

    rules: ScoringRules
    limit: int = Field(default=20_000, ge=1, le=200_000, description="leads scored at most")
    sample: int = Field(default=20, ge=0, le=500, description="changed leads listed")

    @model_validator(mode="before")
    @classmethod
    def _ignore_read_only(cls, value: Any) -> Any:
        return without_read_only(value)


@router.post("/preview")
async def preview_rules(
    body: PreviewRequest, runtime: Runtime, principal: Manager
) -> dict[str, Any]:
    """What the draft would change, before saving it: every known lead (up to ``limit``, by
    id; ``complete`` says whether that was all) scored now under the rules in force and
    under the draft with the same facts — MQLs, grade, fit grade and engagement level
    distributions on both sides, how many leads change, how many would become MQLs or stop
    meeting the MQL rule (a sticky MQL stays one), and a sample of the leads that change.
    Nothing is stored (a read-only session, off the event loop's thread on SQLite)."""
    async with runtime.db.read() as session:
        return await preview(session, body.rules, utcnow(), limit=body.limit, sample=body.sample)
