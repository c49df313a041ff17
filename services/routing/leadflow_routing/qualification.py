"""The SDR's work on a lead: accept, qualify (BANT or MEDDIC), disqualify, recycle."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.assignment import assign_ae, record
from leadflow_routing.counters import open_work_counted
from leadflow_routing.models import RoutedLead, outbox
from leadflow_routing.repository import RoutingRepository
from leadflow_shared.auth import Principal
from leadflow_shared.errors import Conflict, Forbidden
from leadflow_shared.events import LeadAccepted, LeadDisqualified, LeadQualified, LeadRecycled
from leadflow_shared.ids import utcnow
from leadflow_shared.validation import LongText, Name

BANT_FIELDS = ("budget", "authority", "need", "timeline")
MEDDIC_FIELDS = (
    "metrics",
    "economic_buyer",
    "decision_criteria",
    "decision_process",
    "identify_pain",
    "champion",
)


class Qualification(BaseModel):
    """BANT (budget, authority, need, timeline) or MEDDIC fields; all of the framework's
    fields are required so the AE receives a complete hand-off."""

    model_config = ConfigDict(extra="forbid")

    framework: Literal["bant", "meddic"] = "bant"
    budget: Name | None = None
    authority: Name | None = None
    need: Name | None = None
    timeline: Name | None = None
    metrics: Name | None = None
    economic_buyer: Name | None = None
    decision_criteria: Name | None = None
    decision_process: Name | None = None
    identify_pain: Name | None = None
    champion: Name | None = None
    meeting_at: str | None = Field(default=None, max_length=40)
    notes: LongText | None = None

    @model_validator(mode="after")
    def _framework_complete(self) -> Qualification:
        required = BANT_FIELDS if self.framework == "bant" else MEDDIC_FIELDS
        missing = [name for name in required if not getattr(self, name)]
        if missing:
            raise ValueError(f"{self.framework} needs {', '.join(missing)}")
        return self

    def fields(self) -> dict[str, Any]:
        names = BANT_FIELDS if self.framework == "bant" else MEDDIC_FIELDS
        out: dict[str, Any] = {name: getattr(self, name) for name in names}
        if self.meeting_at:
            out["meeting_at"] = self.meeting_at
        return out


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Name = Field(min_length=1)


def _ensure_sdr_owner(principal: Principal, lead: RoutedLead) -> None:
    if principal.is_manager:
        return
    if principal.role != "sdr" or lead.sdr != principal.sub:
        raise Forbidden("only the lead's SDR or a manager may do this")


def _ensure_status(lead: RoutedLead, allowed: tuple[str, ...], action: str) -> None:
    if lead.status not in allowed:
        raise Conflict(
            f"cannot {action} a lead in status {lead.status!r}; allowed from: {', '.join(allowed)}"
        )


async def _sdr_step(
    session: AsyncSession,
    lead: RoutedLead,
    principal: Principal,
    *,
    action: str,
    allowed: tuple[str, ...],
    status: str,
    kind: str,
    reason: str,
) -> tuple[str, datetime]:
    """The common part of every SDR action: who may, from which state, and the record."""
    _ensure_sdr_owner(principal, lead)
    _ensure_status(lead, allowed, action)
    assert lead.sdr is not None
    now = utcnow()
    repo = RoutingRepository(session)
    async with open_work_counted(repo, lead):
        lead.status = status
    lead.sla_due_at = None
    lead.updated_at = now
    await repo.add_decision(
        record(lead, kind, reason, now, role="sdr", owner=lead.sdr, by=principal.sub)
    )
    return lead.sdr, now


async def accept(session: AsyncSession, lead: RoutedLead, principal: Principal) -> None:
    """The SDR takes the lead: the acceptance SLA clock stops."""
    owner, now = await _sdr_step(
        session,
        lead,
        principal,
        action="accept",
        allowed=("assigned",),
        status="accepted",
        kind="accepted",
        reason=f"accepted by {principal.sub}",
    )
    await outbox.add(session, LeadAccepted(lead_id=lead.id, owner=owner, accepted_at=now))


async def qualify(
    session: AsyncSession, lead: RoutedLead, principal: Principal, body: Qualification
) -> None:
    """Record the qualification and hand the lead to an AE in the same transaction."""
    owner, now = await _sdr_step(
        session,
        lead,
        principal,
        action="qualify",
        allowed=("assigned", "accepted"),
        status="qualified",
        kind="qualified",
        reason=f"qualified ({body.framework}) by {principal.sub}",
    )
    lead.qualification = {"framework": body.framework, **body.fields(), "notes": body.notes}
    await outbox.add(
        session,
        LeadQualified(
            lead_id=lead.id,
            owner=owner,
            framework=body.framework,
            fields=body.fields(),
            notes=body.notes,
            qualified_at=now,
        ),
    )
    await assign_ae(session, outbox, lead, now)


async def disqualify(
    session: AsyncSession, lead: RoutedLead, principal: Principal, reason: str
) -> None:
    owner, _ = await _sdr_step(
        session,
        lead,
        principal,
        action="disqualify",
        allowed=("assigned", "accepted"),
        status="disqualified",
        kind="disqualified",
        reason=f"disqualified by {principal.sub}: {reason}",
    )
    await outbox.add(session, LeadDisqualified(lead_id=lead.id, owner=owner, reason=reason))


async def recycle(
    session: AsyncSession, lead: RoutedLead, principal: Principal, reason: str
) -> None:
    """Back to nurture: the SDR lets go; a later MQL signal does not re-route it by itself."""
    owner, _ = await _sdr_step(
        session,
        lead,
        principal,
        action="recycle",
        allowed=("assigned", "accepted"),
        status="nurture",
        kind="recycled",
        reason=f"recycled to nurture by {principal.sub}: {reason}",
    )
    await outbox.add(session, LeadRecycled(lead_id=lead.id, owner=owner, reason=reason))
