"""Assignments, the rep's queue, and the SDR's actions on a lead."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from leadflow_routing import qualification
from leadflow_routing.models import ConfigSnapshot, Decision, RoutedLead
from leadflow_routing.qualification import Qualification, Reason
from leadflow_routing.replay import ROUTING_KINDS, replay, rules_of
from leadflow_routing.repository import RoutingRepository
from leadflow_routing.rules.document import RuleSet
from leadflow_shared.auth import CurrentPrincipal, Principal, require_roles
from leadflow_shared.errors import Forbidden, NotFound, problem_responses
from leadflow_shared.service import SessionDep

router = APIRouter(tags=["assignments"])
# The SDR's actions: another rep's lead is a 403, a state that forbids it a 409.
ACTION_RESPONSES = problem_responses(
    403,
    404,
    409,
    s403="not the lead's SDR (nor a manager)",
    s409="the lead's status forbids this action",
)
Worker = Annotated[Principal, Depends(require_roles("sdr", "manager"))]


class HistoryEntry(BaseModel):
    kind: str
    role: str | None
    owner: str | None
    previous_owner: str | None
    rule: str | None
    strategy: str | None
    reason: str
    candidates: list[str]
    skipped: dict[str, str]
    sla_due_at: datetime | None
    at: datetime
    by: str | None
    # Routing decisions: the rules version they applied and how long deciding took.
    rules_version: int | None = None
    duration_ms: float | None = None


class AssignmentOut(BaseModel):
    lead_id: str
    status: str
    owners: dict[str, str | None]
    sla_due_at: datetime | None
    qualification: dict[str, Any] | None
    deal_id: str | None
    history: list[HistoryEntry]


class QueueItem(BaseModel):
    lead_id: str
    status: str
    role: str
    company: str | None
    score: int | None
    sla_due_at: datetime | None
    updated_at: datetime


async def _lead(session: SessionDep, lead_id: str) -> RoutedLead:
    """The lead to act on, locked; the decision lock first, as the SLA timer takes it, so
    this never waits for it while holding a lead that a batch of events wants."""
    repo = RoutingRepository(session)
    await repo.lock_decisions()
    lead = await repo.lead(lead_id, for_update=True)
    if lead is None:
        raise NotFound(f"no lead {lead_id} known to routing (not yet an MQL?)")
    return lead


@router.get(
    "/v1/assignments/{lead_id}",
    response_model=AssignmentOut,
    responses=problem_responses(403, 404, s403="a rep the lead was never assigned to"),
)
async def get_assignment(
    lead_id: str, session: SessionDep, principal: CurrentPrincipal
) -> AssignmentOut:
    """Current owners per role and every decision with its reason."""
    lead, history = await _visible_lead(RoutingRepository(session), lead_id, principal)
    return AssignmentOut(
        lead_id=lead.id,
        status=lead.status,
        owners={"sdr": lead.sdr, "ae": lead.ae, "am": lead.am},
        sla_due_at=lead.sla_due_at,
        qualification=lead.qualification,
        deal_id=lead.deal_id,
        history=[HistoryEntry.model_validate(d, from_attributes=True) for d in history],
    )


class ReplayedDecision(BaseModel):
    decision_id: str
    kind: str
    role: str | None
    at: datetime
    rules_version: int | None
    config_version: str | None
    recorded_owner: str | None
    recorded_rule: str | None
    replayed_owner: str | None
    replayed_rule: str | None
    replayed_reason: str | None
    match: bool | None
    mismatch: str | None


class ReplayOut(BaseModel):
    lead_id: str
    decisions: list[ReplayedDecision]
    replayed: int
    matched: int
    mismatched: int
    all_match: bool


async def _visible_lead(
    repo: RoutingRepository, lead_id: str, principal: Principal
) -> tuple[RoutedLead, list[Decision]]:
    """The lead and its history, for managers and the reps it was ever assigned to."""
    lead = await repo.lead(lead_id)
    if lead is None:
        raise NotFound(f"no lead {lead_id} known to routing")
    history = await repo.history(lead_id)
    if principal.role in {"sdr", "ae", "am"} and principal.sub not in {
        lead.sdr,
        lead.ae,
        lead.am,
        *(d.owner for d in history),
    }:
        raise Forbidden("this lead was never assigned to you")
    return lead, history


@router.get(
    "/v1/assignments/{lead_id}/replay",
    response_model=ReplayOut,
    responses=problem_responses(403, 404, s403="a rep the lead was never assigned to"),
)
async def replay_assignment(
    lead_id: str, session: SessionDep, principal: CurrentPrincipal
) -> ReplayOut:
    """Every routing decision of the lead made again from its recorded inputs (the lead as
    routing saw it, the rules version, the directory snapshot, the counters, the time): the
    owner replayed next to the owner recorded, and what differs when they do not match."""
    repo = RoutingRepository(session)
    _, history = await _visible_lead(repo, lead_id, principal)
    snapshots: dict[str, ConfigSnapshot | None] = {}
    rule_sets: dict[int, RuleSet | None] = {}
    out: list[ReplayedDecision] = []
    for decision in history:
        if decision.kind not in ROUTING_KINDS:
            continue
        version, rules_version = decision.config_version, decision.rules_version
        if version is not None and version not in snapshots:
            snapshots[version] = await repo.snapshot(version)
        if rules_version is not None and rules_version not in rule_sets:
            row = await repo.rules_version(rules_version) if rules_version else None
            rule_sets[rules_version] = rules_of(row.document if row else None, rules_version)
        result = replay(
            decision,
            snapshots.get(version) if version else None,
            rule_sets.get(rules_version) if rules_version is not None else None,
        )
        out.append(ReplayedDecision(**asdict(result)))
    replayed = [d for d in out if d.match is not None]
    matched = sum(1 for d in replayed if d.match)
    return ReplayOut(
        lead_id=lead_id,
        decisions=out,
        replayed=len(replayed),
        matched=matched,
        mismatched=len(replayed) - matched,
        all_match=matched == len(replayed),
    )


@router.get(
    "/v1/queue",
    response_model=list[QueueItem],
    responses=problem_responses(
        403,
        s403="a rep asking for another's queue, a manager without owner= and role=, or "
        "an integration (no queue)",
    ),
)
async def get_queue(
    session: SessionDep,
    principal: CurrentPrincipal,
    owner: str | None = Query(default=None, max_length=100, pattern=r"^[A-Za-z0-9_.:@\-]+$"),
    role: str | None = Query(default=None, pattern="^(sdr|ae|am)$"),
) -> list[QueueItem]:
    """The caller's open leads, SLA due times first. Managers may ask for any rep's queue."""
    if principal.role in {"sdr", "ae", "am"}:
        if owner not in (None, principal.sub):
            raise Forbidden("reps see only their own queue")
        owner, role = principal.sub, principal.role
    elif principal.is_manager:
        if owner is None or role is None:
            raise Forbidden("managers must name owner= and role= (sdr, ae or am)")
    else:
        raise Forbidden(f"role {principal.role!r} has no queue")
    leads = await RoutingRepository(session).queue(role, owner)
    return sorted(
        (
            QueueItem(
                lead_id=x.id,
                status=x.status,
                role=role,
                company=x.company,
                score=x.score,
                sla_due_at=x.sla_due_at,
                updated_at=x.updated_at,
            )
            for x in leads
        ),
        key=lambda item: (item.sla_due_at is None, item.sla_due_at or item.updated_at),
    )


@router.post("/v1/leads/{lead_id}/accept", response_model=AssignmentOut, responses=ACTION_RESPONSES)
async def accept_lead(lead_id: str, session: SessionDep, principal: Worker) -> AssignmentOut:
    await qualification.accept(session, await _lead(session, lead_id), principal)
    return await get_assignment(lead_id, session, principal)


@router.post(
    "/v1/leads/{lead_id}/qualify", response_model=AssignmentOut, responses=ACTION_RESPONSES
)
async def qualify_lead(
    lead_id: str, body: Qualification, session: SessionDep, principal: Worker
) -> AssignmentOut:
    await qualification.qualify(session, await _lead(session, lead_id), principal, body)
    return await get_assignment(lead_id, session, principal)


@router.post(
    "/v1/leads/{lead_id}/disqualify", response_model=AssignmentOut, responses=ACTION_RESPONSES
)
async def disqualify_lead(
    lead_id: str, body: Reason, session: SessionDep, principal: Worker
) -> AssignmentOut:
    await qualification.disqualify(session, await _lead(session, lead_id), principal, body.reason)
    return await get_assignment(lead_id, session, principal)


@router.post(
    "/v1/leads/{lead_id}/recycle", response_model=AssignmentOut, responses=ACTION_RESPONSES
)
async def recycle_lead(
    lead_id: str, body: Reason, session: SessionDep, principal: Worker
) -> AssignmentOut:
    await qualification.recycle(session, await _lead(session, lead_id), principal, body.reason)
    return await get_assignment(lead_id, session, principal)
