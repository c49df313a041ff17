"""What-if: replay past MQLs through a draft rule set, without touching live state.

Availability is judged at each lead's original capture time with today's team; rotation
and daily-capacity counters start empty and advance as the replay assigns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow_routing.decisions import RoutingDecision, TeamState, decide, pool_key
from leadflow_routing.rules.document import RuleSet
from leadflow_routing.strategies import RotationStats
from leadflow_routing.team.availability import RepView


@dataclass(frozen=True)
class PastLead:
    lead_id: str
    attributes: Mapping[str, Any]
    at: datetime
    actual_owner: str | None
    role: str = "sdr"
    # The rule of the actual decision (its pool is ``<role>:<rule>``), when one was made.
    actual_rule: str | None = None


@dataclass
class SimulatedAssignment:
    lead_id: str
    actual_owner: str | None
    simulated_owner: str | None
    rule: str | None
    reason: str
    role: str = "sdr"
    at: str | None = None
    actual_rule: str | None = None


@dataclass
class SimulationReport:
    leads: int = 0
    changed: int = 0
    unassigned: int = 0
    # v1: per rep, leads received actually and under the draft (every role together).
    by_owner: dict[str, dict[str, int]] = field(default_factory=dict)
    assignments: list[SimulatedAssignment] = field(default_factory=list)
    # v2 (contract v2, "What-if simulation"):
    roles: list[str] = field(default_factory=list)
    # [{rep_id, role, actual, simulated, delta}] in rep order.
    per_rep: list[dict[str, Any]] = field(default_factory=list)
    # {pool: {"actual": {counts, spread, gini}, "draft": {...}}}; a pool is
    # ``<role>:<rule id>``; its members are every rep that was a candidate in it.
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The leads that would change owner (at most ``CHANGED_LISTED``; ``changed`` counts all).
    changed_leads: list[SimulatedAssignment] = field(default_factory=list)
    # Per rep and UTC day where the draft's daily capacity turned leads away, or where what
    # actually happened exceeds the (draft) capacity.
    capacity_breaches: list[dict[str, Any]] = field(default_factory=list)
    # Why leads found nobody under the draft: {reason: count}.
    unassigned_reasons: dict[str, int] = field(default_factory=dict)


CHANGED_LISTED = 1000
_AT_CAPACITY = "at daily capacity"


def spread(counts: Sequence[int]) -> int:
    """Most minus fewest leads of one pool's members (0 for an empty pool)."""
    return max(counts) - min(counts) if counts else 0


def gini(counts: Sequence[int]) -> float:
    """Gini coefficient of the members' counts: 0 when equal, towards 1 when one gets all."""
    total = sum(counts)
    if not counts or total == 0:
        return 0.0
    ordered = sorted(counts)
    n = len(ordered)
    weighted = sum((i + 1) * x for i, x in enumerate(ordered))
    return round(2 * weighted / (n * total) - (n + 1) / n, 4)


def _pool_figures(members: set[str], received: Counter[str]) -> dict[str, Any]:
    counts = {rep: received[rep] for rep in sorted(members)}
    values = list(counts.values())
    return {"counts": counts, "spread": spread(values), "gini": gini(values)}


def simulate(
    rule_set: RuleSet, reps: Sequence[RepView], past: Sequence[PastLead], role: str = "sdr"
) -> SimulationReport:
    """Replay ``past`` decisions through ``rule_set`` with ``reps`` (each lead at its own
    time, in time order, counters starting empty). ``role`` is the role of leads that do
    not name theirs. Deterministic: the same inputs give the same report."""
    report = SimulationReport()
    rotation: dict[str, dict[str, RotationStats]] = defaultdict(dict)
    credit: dict[str, dict[str, int]] = defaultdict(dict)
    per_day: Counter[tuple[str, str]] = Counter()
    actual_per_day: Counter[tuple[str, str]] = Counter()
    capacity_skips: Counter[tuple[str, str]] = Counter()
    actual: Counter[str] = Counter()
    simulated: Counter[str] = Counter()
    actual_in_pool: dict[str, Counter[str]] = defaultdict(Counter)
    draft_in_pool: dict[str, Counter[str]] = defaultdict(Counter)
    pool_members: dict[str, set[str]] = defaultdict(set)
    role_of = {rep.id: rep.role for rep in reps}
    capacity = {rep.id: rep.capacity_per_day for rep in reps}
    roles: set[str] = set()
    for lead in sorted(past, key=lambda x: (x.at, x.role or role, x.lead_id)):
        lead_role = lead.role or role
        roles.add(lead_role)
        day = lead.at.date().isoformat()
        team = TeamState(
            assigned_today={rep.id: per_day[(day, rep.id)] for rep in reps},
            rotation=rotation,
            credit=credit,
        )
        outcome = decide(lead_role, lead.attributes, rule_set, list(reps), team, lead.at)
        report.leads += 1
        for rep_id, why in outcome.skipped.items():
            if why.startswith(_AT_CAPACITY):
                capacity_skips[(day, rep_id)] += 1
        if lead.actual_owner:
            actual[lead.actual_owner] += 1
            actual_per_day[(day, lead.actual_owner)] += 1
            if lead.actual_rule:
                actual_in_pool[pool_key(lead_role, lead.actual_rule)][lead.actual_owner] += 1
        if isinstance(outcome, RoutingDecision):
            stats = rotation[outcome.pool].get(outcome.owner, RotationStats())
            rotation[outcome.pool][outcome.owner] = RotationStats(stats.assigned_count + 1, lead.at)
            per_day[(day, outcome.owner)] += 1
            for rep_id, delta in outcome.credit_changes.items():
                credit[outcome.pool][rep_id] = credit[outcome.pool].get(rep_id, 0) + delta
            simulated[outcome.owner] += 1
            draft_in_pool[outcome.pool][outcome.owner] += 1
            pool_members[outcome.pool].update(outcome.candidates)
            pool_members[outcome.pool].add(outcome.owner)
            owner, rule, reason = outcome.owner, outcome.rule, outcome.reason
        else:
            report.unassigned += 1
            report.unassigned_reasons[outcome.reason] = (
                report.unassigned_reasons.get(outcome.reason, 0) + 1
            )
            owner, rule, reason = None, None, outcome.reason
        assignment = SimulatedAssignment(
            lead.lead_id,
            lead.actual_owner,
            owner,
            rule,
            reason,
            role=lead_role,
            at=lead.at.isoformat(),
            actual_rule=lead.actual_rule,
        )
        report.assignments.append(assignment)
        if owner != lead.actual_owner:
            report.changed += 1
            if len(report.changed_leads) < CHANGED_LISTED:
                report.changed_leads.append(assignment)
    for rep_id in sorted(set(actual) | set(simulated)):
        report.by_owner[rep_id] = {"actual": actual[rep_id], "simulated": simulated[rep_id]}
    report.roles = sorted(roles)
    listed = sorted(
        {r.id for r in reps if r.role in roles} | set(actual) | set(simulated),
    )
    report.per_rep = [
        {
            "rep_id": rep_id,
            "role": role_of.get(rep_id),
            "actual": actual[rep_id],
            "simulated": simulated[rep_id],
            "delta": simulated[rep_id] - actual[rep_id],
        }
        for rep_id in listed
    ]
    for pool in sorted(set(draft_in_pool) | set(actual_in_pool)):
        members = pool_members[pool] | set(actual_in_pool[pool])
        report.pools[pool] = {
            "actual": _pool_figures(members, actual_in_pool[pool]),
            "draft": _pool_figures(members, draft_in_pool[pool]),
        }
    days_reps = set(capacity_skips) | {
        key
        for key, count in actual_per_day.items()
        if capacity.get(key[1]) is not None and count > (capacity[key[1]] or 0)
    }
    for day, rep_id in sorted(days_reps):
        limit = capacity.get(rep_id)
        report.capacity_breaches.append(
            {
                "rep_id": rep_id,
                "day": day,
                "capacity_per_day": limit,
                "actual": actual_per_day[(day, rep_id)],
                "simulated": per_day[(day, rep_id)],
                "turned_away_under_draft": capacity_skips[(day, rep_id)],
                "actual_over_capacity": limit is not None and actual_per_day[(day, rep_id)] > limit,
            }
        )
    return report
