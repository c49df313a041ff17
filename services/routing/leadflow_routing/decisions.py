"""The routing decision: first matching rule with an available rep, then its strategy.

Pure: plain rules, reps and counters in, a :class:`RoutingDecision` (or the reasons why
nobody could take the lead) out. The same function serves live routing and simulation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow_routing.rules.document import Rule, RuleSet
from leadflow_routing.rules.matching import rule_matches
from leadflow_routing.strategies import (
    RotationStats,
    assign_load_balanced,
    assign_round_robin,
    assign_weighted,
)
from leadflow_routing.team.availability import RepView, unavailable_reason


@dataclass(frozen=True)
class TeamState:
    """Counters the decision needs, per rep id (and per pool for rotation)."""

    assigned_today: Mapping[str, int] = field(default_factory=dict)
    open_load: Mapping[str, int] = field(default_factory=dict)
    rotation: Mapping[str, Mapping[str, RotationStats]] = field(default_factory=dict)
    # Weighted rotation's credit per pool and rep (see strategies.assign_weighted).
    credit: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class RoutingDecision:
    role: str
    owner: str
    rule: str
    pool: str
    strategy: str
    reason: str
    candidates: list[str]
    skipped: dict[str, str]
    sla_minutes: int | None
    # Weighted rotation: the change of each available rep's credit in the pool.
    credit_changes: dict[str, int] = field(default_factory=dict)
    # The SLA clock runs in the owner's working hours (``owner_hours``) only.
    sla_business_hours: bool = False
    owner_hours: dict[str, Any] | None = None


@dataclass(frozen=True)
class NoRepAvailable:
    role: str
    reason: str
    skipped: dict[str, str]


def pool_key(role: str, rule_id: str) -> str:
    return f"{role}:{rule_id}"


def _in_pool(rep: RepView, rule: Rule) -> bool:
    pool = rule.pool
    if rep.role != rule.role:
        return False
    if pool.reps is not None and rep.id not in pool.reps:
        return False
    if pool.team is not None and rep.team != pool.team:
        return False
    if pool.territory is not None and pool.territory not in rep.territories:
        return False
    return pool.segment is None or pool.segment in rep.segments


def _fallback(role: str) -> Rule:
    return Rule(id="default", name=f"no rule matched: every {role}", role=role)


def decide(
    role: str,
    lead: Mapping[str, Any],
    rule_set: RuleSet,
    reps: list[RepView],
    team: TeamState,
    now: datetime,
    *,
    exclude: Collection[str] = (),
) -> RoutingDecision | NoRepAvailable:
    """Route one lead for ``role``; ``exclude`` names reps that must not get it again."""
    matched = [r for r in rule_set.rules if r.role == role and rule_matches(r, lead)]
    rules = matched or [_fallback(role)]
    skipped: dict[str, str] = {}
    tried: list[str] = []
    for rule in rules:
        pool = [rep for rep in reps if _in_pool(rep, rule)]
        tried.append(rule.id)
        available: list[RepView] = []
        for rep in sorted(pool, key=lambda r: r.id):
            if rep.id in exclude:
                skipped[rep.id] = "excluded: already had this lead"
                continue
            why = unavailable_reason(rep, now, team.assigned_today.get(rep.id, 0))
            if why is None:
                available.append(rep)
            else:
                skipped[rep.id] = why
        if not available:
            continue
        key = pool_key(role, rule.id)
        stats = team.rotation.get(key, {})
        credit_changes: dict[str, int] = {}
        if rule.strategy == "weighted":
            chosen, why_chosen, credit_changes = assign_weighted(
                available, stats, team.credit.get(key, {})
            )
        elif rule.strategy == "load_balanced":
            chosen, why_chosen = assign_load_balanced(available, stats, team.open_load)
        else:
            chosen, why_chosen = assign_round_robin(available, stats)
        label = f"{rule.id}" + (f" ({rule.name})" if rule.name else "")
        reason = (
            f"rule {label} matched; {rule.strategy} among {len(available)} available "
            f"{role}(s): {chosen.id} — {why_chosen}"
        )
        if not matched:
            reason = f"no {role} rule matched the lead; {rule.strategy} among every {role}: " + (
                f"{chosen.id} — {why_chosen}"
            )
        return RoutingDecision(
            role=role,
            owner=chosen.id,
            rule=rule.id,
            pool=key,
            strategy=rule.strategy,
            reason=reason,
            candidates=[r.id for r in available],
            skipped=skipped,
            sla_minutes=rule.sla_minutes
            or (rule_set.default_sla_minutes if role == "sdr" else None),
            credit_changes=credit_changes,
            sla_business_hours=rule.sla_business_hours,
            owner_hours=chosen.working_hours,
        )
    return NoRepAvailable(
        role=role,
        reason=f"no available {role} in the pools of rule(s) {', '.join(tried)}",
        skipped=skipped,
    )
