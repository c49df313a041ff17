"""Applying routing decisions: owners, SLA clocks, rotation counters, history, events."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.decisions import NoRepAvailable, RoutingDecision, TeamState, decide
from leadflow_routing.models import Decision, Rep, RoutedLead
from leadflow_routing.repository import RoutingRepository, start_of_day
from leadflow_routing.rules.document import DEFAULT_RULES, RuleSet
from leadflow_routing.team.availability import RepView
from leadflow_shared.events import (
    AccountAssigned,
    LeadAssigned,
    LeadReassigned,
    LeadSlaBreached,
)
from leadflow_shared.ids import new_id
from leadflow_shared.messaging import Outbox

WAITING = {"sdr": "waiting_for_rep", "ae": "waiting_for_ae", "am": "waiting_for_am"}


def rep_view(rep: Rep) -> RepView:
    return RepView(
        id=rep.id,
        role=rep.role,
        team=rep.team,
        territories=tuple(rep.territories),
        segments=tuple(rep.segments),
        capacity_per_day=rep.capacity_per_day,
        weight=rep.weight,
        working_hours=rep.working_hours,
        out_of_office=rep.out_of_office,
        out_of_office_until=rep.out_of_office_until,
        active=rep.active,
    )


def lead_attributes(lead: RoutedLead) -> dict[str, object]:
    return {**lead.profile, "company": lead.company, "score": lead.score}


async def current_rule_set(repo: RoutingRepository) -> RuleSet:
    row = await repo.current_rules()
    return DEFAULT_RULES if row is None else RuleSet.model_validate(row.document)


async def route(
    session: AsyncSession,
    lead: RoutedLead,
    role: str,
    now: datetime,
    *,
    exclude: Collection[str] = (),
) -> RoutingDecision | NoRepAvailable:
    """Decide who of ``role`` gets ``lead`` now, from the current rules and team state."""
    repo = RoutingRepository(session)
    await repo.lock_role(role)
    team = TeamState(
        assigned_today=await repo.assigned_since(start_of_day(now)),
        open_load=await repo.open_load(role),
        rotation=await repo.rotation(role),
    )
    reps = [rep_view(r) for r in await repo.reps(role)]
    rule_set = await current_rule_set(repo)
    return decide(role, lead_attributes(lead), rule_set, reps, team, now, exclude=exclude)


def record(lead: RoutedLead, kind: str, reason: str, now: datetime, **fields: object) -> Decision:
    return Decision(id=new_id(), lead_id=lead.id, kind=kind, reason=reason, at=now, **fields)


async def _wait(
    repo: RoutingRepository, lead: RoutedLead, outcome: NoRepAvailable, now: datetime
) -> None:
    status = WAITING[outcome.role]
    if lead.status != status:
        # Recorded once; the timer retries quietly until a rep is free.
        repo.add(
            record(lead, "waiting", outcome.reason, now, role=outcome.role, skipped=outcome.skipped)
        )
        lead.status = status
        lead.updated_at = now


async def _apply(
    repo: RoutingRepository,
    lead: RoutedLead,
    decision: RoutingDecision,
    now: datetime,
    *,
    kind: str = "assigned",
    previous: str | None = None,
) -> datetime | None:
    sla_due = now + timedelta(minutes=decision.sla_minutes) if decision.sla_minutes else None
    setattr(lead, decision.role, decision.owner)
    lead.updated_at = now
    await repo.count_rotation(decision.pool, decision.owner, now)
    repo.add(
        record(
            lead,
            kind,
            decision.reason,
            now,
            role=decision.role,
            owner=decision.owner,
            previous_owner=previous,
            rule=decision.rule,
            strategy=decision.strategy,
            candidates=decision.candidates,
            skipped=decision.skipped,
            sla_due_at=sla_due,
        )
    )
    return sla_due


async def assign_sdr(
    session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime
) -> None:
    """Route an MQL to an SDR and start the acceptance SLA clock."""
    repo = RoutingRepository(session)
    outcome = await route(session, lead, "sdr", now)
    if isinstance(outcome, NoRepAvailable):
        await _wait(repo, lead, outcome, now)
        return
    lead.sla_due_at = await _apply(repo, lead, outcome, now)
    lead.status = "assigned"
    await outbox.add(session, _assigned_event(lead, outcome, lead.sla_due_at))


async def assign_ae(session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime) -> None:
    """Hand a qualified lead to an AE (deals opens the deal on ``lead.assigned``)."""
    repo = RoutingRepository(session)
    outcome = await route(session, lead, "ae", now)
    if isinstance(outcome, NoRepAvailable):
        await _wait(repo, lead, outcome, now)
        return
    await _apply(repo, lead, outcome, now)
    lead.status = "qualified"
    await outbox.add(session, _assigned_event(lead, outcome, None))


async def assign_am(session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime) -> None:
    """Hand a won account to an account manager."""
    repo = RoutingRepository(session)
    outcome = await route(session, lead, "am", now)
    if isinstance(outcome, NoRepAvailable):
        await _wait(repo, lead, outcome, now)
        return
    await _apply(repo, lead, outcome, now)
    lead.status = "won"
    await outbox.add(
        session,
        AccountAssigned(
            lead_id=lead.id,
            owner=outcome.owner,
            deal_id=lead.deal_id or "",
            rule=outcome.rule,
            strategy=outcome.strategy,
            reason=outcome.reason,
        ),
    )


async def breach_sla(
    session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime
) -> None:
    """The SDR did not accept in time: announce the breach and reassign if anyone can take it."""
    repo = RoutingRepository(session)
    previous = lead.sdr
    assert previous is not None and lead.sla_due_at is not None
    await outbox.add(
        session,
        LeadSlaBreached(lead_id=lead.id, role="sdr", owner=previous, sla_due_at=lead.sla_due_at),
    )
    repo.add(
        record(
            lead,
            "sla_breached",
            f"{previous} did not accept by {lead.sla_due_at.isoformat()}",
            now,
            role="sdr",
            owner=previous,
            sla_due_at=lead.sla_due_at,
        )
    )
    had_it = {d.owner for d in await repo.history(lead.id) if d.role == "sdr" and d.owner}
    outcome = await route(session, lead, "sdr", now, exclude=had_it | {previous})
    if isinstance(outcome, NoRepAvailable):
        lead.sla_due_at = None
        lead.updated_at = now
        repo.add(
            record(
                lead,
                "escalated",
                f"no other sdr available ({outcome.reason}); "
                f"left with {previous} for a manager to act",
                now,
                role="sdr",
                owner=previous,
                skipped=outcome.skipped,
            )
        )
        return
    lead.sla_due_at = await _apply(repo, lead, outcome, now, kind="reassigned", previous=previous)
    await outbox.add(
        session,
        LeadReassigned(
            lead_id=lead.id,
            role="sdr",
            previous_owner=previous,
            owner=outcome.owner,
            reason=f"SLA breached by {previous}; " + outcome.reason,
        ),
    )


def _assigned_event(
    lead: RoutedLead, decision: RoutingDecision, sla_due: datetime | None
) -> LeadAssigned:
    return LeadAssigned(
        lead_id=lead.id,
        role="sdr" if decision.role == "sdr" else "ae",
        owner=decision.owner,
        rule=decision.rule,
        strategy=decision.strategy,
        reason=decision.reason,
        sla_due_at=sla_due,
        candidates=decision.candidates,
        skipped=decision.skipped,
        company=lead.company,
    )
