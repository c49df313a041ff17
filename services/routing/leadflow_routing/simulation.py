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

from leadflow_routing.decisions import RoutingDecision, TeamState, decide
from leadflow_routing.rules.document import RuleSet
from leadflow_routing.strategies import RotationStats
from leadflow_routing.team.availability import RepView


@dataclass(frozen=True)
class PastLead:
    lead_id: str
    attributes: Mapping[str, Any]
    at: datetime
    actual_owner: str | None


@dataclass
class SimulatedAssignment:
    lead_id: str
    actual_owner: str | None
    simulated_owner: str | None
    rule: str | None
    reason: str


@dataclass
class SimulationReport:
    leads: int = 0
    changed: int = 0
    unassigned: int = 0
    by_owner: dict[str, dict[str, int]] = field(default_factory=dict)
    assignments: list[SimulatedAssignment] = field(default_factory=list)


def simulate(
    rule_set: RuleSet, reps: Sequence[RepView], past: Sequence[PastLead], role: str = "sdr"
) -> SimulationReport:
    report = SimulationReport()
    rotation: dict[str, dict[str, RotationStats]] = defaultdict(dict)
    credit: dict[str, dict[str, int]] = defaultdict(dict)
    per_day: Counter[tuple[str, str]] = Counter()
    actual: Counter[str] = Counter()
    simulated: Counter[str] = Counter()
    for lead in sorted(past, key=lambda x: x.at):
        day = lead.at.date().isoformat()
        team = TeamState(
            assigned_today={rep.id: per_day[(day, rep.id)] for rep in reps},
            rotation=rotation,
            credit=credit,
        )
        outcome = decide(role, lead.attributes, rule_set, list(reps), team, lead.at)
        report.leads += 1
        if lead.actual_owner:
            actual[lead.actual_owner] += 1
        if isinstance(outcome, RoutingDecision):
            stats = rotation[outcome.pool].get(outcome.owner, RotationStats())
            rotation[outcome.pool][outcome.owner] = RotationStats(stats.assigned_count + 1, lead.at)
            per_day[(day, outcome.owner)] += 1
            for rep_id, delta in outcome.credit_changes.items():
                credit[outcome.pool][rep_id] = credit[outcome.pool].get(rep_id, 0) + delta
            simulated[outcome.owner] += 1
            owner, rule, reason = outcome.owner, outcome.rule, outcome.reason
        else:
            report.unassigned += 1
            owner, rule, reason = None, None, outcome.reason
        report.changed += owner != lead.actual_owner
        report.assignments.append(
            SimulatedAssignment(lead.lead_id, lead.actual_owner, owner, rule, reason)
        )
    for rep_id in sorted(set(actual) | set(simulated)):
        report.by_owner[rep_id] = {"actual": actual[rep_id], "simulated": simulated[rep_id]}
    return report
