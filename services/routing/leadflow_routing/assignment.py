"""Applying routing decisions: owners, SLA clocks, counters, history, events."""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.configuration import ROUTING_CONFIG, current_rule_set
from leadflow_routing.counters import (
    assignment_changes,
    day_scope,
    open_work,
    open_work_changes,
    open_work_counted,
)
from leadflow_routing.decisions import NoRepAvailable, RoutingDecision, decide
from leadflow_routing.models import Decision, RoutedLead
from leadflow_routing.replay import decision_inputs
from leadflow_routing.repository import WAITING, RoutingRepository
from leadflow_routing.team.availability import business_deadline
from leadflow_shared.events import (
    AccountAssigned,
    LeadAssigned,
    LeadReassigned,
    LeadSlaBreached,
)
from leadflow_shared.events.schemas import LeadEscalated
from leadflow_shared.ids import new_id
from leadflow_shared.messaging import Outbox


def lead_attributes(lead: RoutedLead) -> dict[str, object]:
    return {**lead.profile, "company": lead.company, "score": lead.score}


async def route(
    session: AsyncSession,
    lead: RoutedLead,
    role: str,
    now: datetime,
    *,
    exclude: Collection[str] = (),
) -> tuple[RoutingDecision | NoRepAvailable, dict[str, object]]:
    """Decide who of ``role`` gets ``lead`` now, from the current rules and team state;
    with the decision, what to record for its replay (``decisions`` columns).

    Two statements on a warm cache (one on SQLite): the decision lock, then the
    configuration version with every counter the decision needs."""
    started = time.perf_counter()
    repo = RoutingRepository(session)
    # The lead's pending changes are written once, with the decision's, not before each read.
    with session.no_autoflush:
        await repo.lock_decisions()
        version, team = await repo.team_state(role, day_scope(now))
        config = await ROUTING_CONFIG.get(repo, version)
    attributes = lead_attributes(lead)
    waiting_since = lead.waiting_since if lead.status == WAITING[role] else None
    outcome = decide(
        role,
        attributes,
        config.rule_set,
        config.reps(role),
        team,
        now,
        exclude=exclude,
        waiting_since=waiting_since,
        managers=config.reps("manager"),
    )
    trace: dict[str, object] = {
        "config_version": version,
        "rules_version": config.rules_version,
        "inputs": decision_inputs(role, attributes, exclude, team, waiting_since),
        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
    }
    return outcome, trace


def record(
    lead: RoutedLead, kind: str, reason: str, now: datetime, **fields: object
) -> dict[str, object]:
    """A step of the lead's history (``decisions`` columns), for ``add_decision``."""
    return {"id": new_id(), "lead_id": lead.id, "kind": kind, "reason": reason, "at": now, **fields}


async def _wait(
    repo: RoutingRepository,
    lead: RoutedLead,
    outcome: NoRepAvailable,
    now: datetime,
    trace: dict[str, object],
) -> None:
    status = WAITING[outcome.role]
    if lead.status != status:
        # Recorded once; the timer retries quietly until a rep is free.
        await repo.add_decision(
            record(
                lead,
                "waiting",
                outcome.reason,
                now,
                role=outcome.role,
                skipped=outcome.skipped,
                **trace,
            )
        )
        async with open_work_counted(repo, lead):
            lead.status = status
        lead.updated_at = now
        lead.waiting_since = now


async def _apply(
    repo: RoutingRepository,
    lead: RoutedLead,
    decision: RoutingDecision,
    now: datetime,
    trace: dict[str, object],
    *,
    status: str,
    kind: str = "assigned",
    previous: str | None = None,
) -> datetime | None:
    """Give the lead to the decision's owner: owner, status, counters (one statement) and
    the decision record."""
    sla_due = (
        business_deadline(
            now, decision.sla_minutes, decision.owner_hours if decision.sla_business_hours else None
        )
        if decision.sla_minutes
        else None
    )
    before = open_work(lead)
    setattr(lead, decision.role, decision.owner)
    lead.status = status
    lead.updated_at = now
    lead.waiting_since = None
    await repo.add_to_counters(
        assignment_changes(decision, now) + open_work_changes(before, open_work(lead))
    )
    await repo.add_decision(
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
            **trace,
        )
    )
    return sla_due


async def assign_sdr(
    session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime
) -> None:
    """Route an MQL to an SDR and start the acceptance SLA clock."""
    repo = RoutingRepository(session)
    outcome, trace = await route(session, lead, "sdr", now)
    if isinstance(outcome, NoRepAvailable):
        await _wait(repo, lead, outcome, now, trace)
        return
    lead.sla_due_at = await _apply(repo, lead, outcome, now, trace, status="assigned")
    await outbox.add(session, _assigned_event(lead, outcome, lead.sla_due_at))


async def assign_ae(session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime) -> None:
    """Hand a qualified lead to an AE (deals opens the deal on ``lead.assigned``)."""
    repo = RoutingRepository(session)
    outcome, trace = await route(session, lead, "ae", now)
    if isinstance(outcome, NoRepAvailable):
        await _wait(repo, lead, outcome, now, trace)
        return
    await _apply(repo, lead, outcome, now, trace, status="qualified")
    await outbox.add(session, _assigned_event(lead, outcome, None))


async def assign_am(session: AsyncSession, outbox: Outbox, lead: RoutedLead, now: datetime) -> None:
    """Hand a won account to an account manager."""
    repo = RoutingRepository(session)
    outcome, trace = await route(session, lead, "am", now)
    if isinstance(outcome, NoRepAvailable):
        await _wait(repo, lead, outcome, now, trace)
        return
    await _apply(repo, lead, outcome, now, trace, status="won")
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
    await repo.add_decision(
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
    history = await repo.history(lead.id)
    await _escalate_if_due(session, outbox, repo, lead, history, previous, now)
    had_it = {d.owner for d in history if d.role == "sdr" and d.owner}
    outcome, trace = await route(session, lead, "sdr", now, exclude=had_it | {previous})
    if isinstance(outcome, NoRepAvailable):
        lead.sla_due_at = None
        lead.updated_at = now
        await repo.add_decision(
            record(
                lead,
                "escalated",
                f"no other sdr available ({outcome.reason}); "
                f"left with {previous} for a manager to act",
                now,
                role="sdr",
                owner=previous,
                skipped=outcome.skipped,
                **trace,
            )
        )
        return
    lead.sla_due_at = await _apply(
        repo, lead, outcome, now, trace, status="assigned", kind="reassigned", previous=previous
    )
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


async def _escalate_if_due(
    session: AsyncSession,
    outbox: Outbox,
    repo: RoutingRepository,
    lead: RoutedLead,
    history: list[Decision],
    previous: str,
    now: datetime,
) -> None:
    """The rule that assigned the lead escalates from its ``escalate_after_breaches``-th
    SLA breach on: each such breach goes to the manager of the rep who breached."""
    breaches = sum(1 for d in history if d.kind == "sla_breached" and d.role == "sdr")
    rule_id = next(
        (
            d.rule
            for d in reversed(history)
            if d.role == "sdr" and d.kind in {"assigned", "reassigned"}
        ),
        None,
    )
    rules = {rule.id: rule for rule in (await current_rule_set(repo)).rules}
    rule = rules.get(rule_id or "")
    if rule is None or rule.escalate_after_breaches is None:
        return
    if breaches < rule.escalate_after_breaches:
        return
    rep = await repo.rep(previous)
    manager = rep.manager if rep is not None else None
    reason = (
        f"SLA breached {breaches} time(s) (rule {rule.id} escalates from "
        f"{rule.escalate_after_breaches}); last by {previous}"
        + (f", escalated to their manager {manager}" if manager else ", who has no manager")
    )
    await repo.add_decision(
        record(
            lead,
            "escalated_to_manager",
            reason,
            now,
            role="sdr",
            owner=manager,
            previous_owner=previous,
            rule=rule.id,
        )
    )
    await outbox.add(
        session,
        LeadEscalated(
            lead_id=lead.id,
            role="sdr",
            owner=previous,
            manager=manager,
            breaches=breaches,
            reason=reason,
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
