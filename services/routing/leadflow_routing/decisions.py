"""The routing decision: first matching rule with an available rep, then its strategy.

Pure: plain rules, reps and counters in, a :class:`RoutingDecision` (or the reasons why
nobody could take the lead) out. The same function serves live routing and simulation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from leadflow_routing.rules.document import Pool, Rule, RuleSet
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


def _in_pool(rep: RepView, rule: Rule, pool: Pool | None = None) -> bool:
    """Is ``rep`` in the rule's pool (or in ``pool``, of the rule's role)?"""
    pool = pool or rule.pool
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
    waiting_since: datetime | None = None,
    managers: Sequence[RepView] = (),
) -> RoutingDecision | NoRepAvailable:
    """Route one lead for ``role``; ``exclude`` names reps that must not get it again.

    ``waiting_since``: when the lead started waiting for a rep of ``role`` (None: it is not
    waiting). Once it has waited a matched rule's ``max_wait_minutes``, that rule's
    ``fallback`` pool is tried, then the team's manager (of ``managers``)."""
    matched = [r for r in rule_set.rules if r.role == role and rule_matches(r, lead)]
    rules = matched or [_fallback(role)]
    skipped: dict[str, str] = {}
    tried: list[str] = []

    def available_in(pool: list[RepView]) -> list[RepView]:
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
        return available

    for rule in rules:
        tried.append(rule.id)
        strategy: str = rule.strategy
        owner_note = ""
        if rule.strategy == "account_owner":
            owner, owner_note = _account_owner(role, lead, reps, team, now, exclude)
            if owner is not None:
                return RoutingDecision(
                    role=role,
                    owner=owner.id,
                    rule=rule.id,
                    pool=pool_key(role, f"{rule.id}:account_owner"),
                    strategy="account_owner",
                    reason=f"rule {_label(rule)} matched; account owner {owner.id}",
                    candidates=[owner.id],
                    skipped=skipped,
                    sla_minutes=rule.sla_minutes
                    or (rule_set.default_sla_minutes if role == "sdr" else None),
                    sla_business_hours=rule.sla_business_hours,
                    owner_hours=owner.working_hours,
                )
            strategy = rule.fallback_strategy
        available = available_in([rep for rep in reps if _in_pool(rep, rule)])
        if not available:
            continue
        key = pool_key(role, rule.id)
        stats = team.rotation.get(key, {})
        credit_changes: dict[str, int] = {}
        if strategy == "weighted":
            chosen, why_chosen, credit_changes = assign_weighted(
                available, stats, team.credit.get(key, {})
            )
        elif strategy == "load_balanced":
            chosen, why_chosen = assign_load_balanced(available, stats, team.open_load)
        else:
            chosen, why_chosen = assign_round_robin(available, stats)
        reason = (
            f"rule {_label(rule)} matched; {owner_note}{strategy} among {len(available)} "
            f"available {role}(s): {chosen.id} — {why_chosen}"
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
            strategy=strategy,
            reason=reason,
            candidates=[r.id for r in available],
            skipped=skipped,
            sla_minutes=rule.sla_minutes
            or (rule_set.default_sla_minutes if role == "sdr" else None),
            credit_changes=credit_changes,
            sla_business_hours=rule.sla_business_hours,
            owner_hours=chosen.working_hours,
        )
    reason = f"no available {role} in the pools of rule(s) {', '.join(tried)}"
    for rule in matched:
        if waiting_since is None or rule.max_wait_minutes is None:
            continue
        waited = (now - waiting_since).total_seconds() / 60
        if waited < rule.max_wait_minutes:
            continue
        why_fallback = (
            f"{reason}; waited {waited:.0f} min, over rule {rule.id}'s max_wait_minutes "
            f"({rule.max_wait_minutes})"
        )
        if rule.fallback is not None:
            available = available_in([rep for rep in reps if _in_pool(rep, rule, rule.fallback)])
            if available:
                key = pool_key(role, f"{rule.id}:fallback")
                chosen, why_chosen = assign_round_robin(available, team.rotation.get(key, {}))
                return RoutingDecision(
                    role=role,
                    owner=chosen.id,
                    rule=rule.id,
                    pool=key,
                    strategy="fallback",
                    reason=f"{why_fallback}: the fallback pool's {chosen.id} — {why_chosen}",
                    candidates=[r.id for r in available],
                    skipped=skipped,
                    sla_minutes=rule.sla_minutes
                    or (rule_set.default_sla_minutes if role == "sdr" else None),
                    sla_business_hours=rule.sla_business_hours,
                    owner_hours=chosen.working_hours,
                )
        manager = _team_manager(rule, reps, managers, now)
        if manager is not None:
            return RoutingDecision(
                role=role,
                owner=manager.id,
                rule=rule.id,
                pool=pool_key(role, f"{rule.id}:manager"),
                strategy="team_manager",
                reason=f"{why_fallback}: to the team's manager {manager.id}, to hand on",
                candidates=[manager.id],
                skipped=skipped,
                sla_minutes=None,  # a manager's call: no acceptance clock
            )
    return NoRepAvailable(role=role, reason=reason, skipped=skipped)


def _label(rule: Rule) -> str:
    return f"{rule.id}" + (f" ({rule.name})" if rule.name else "")


def _account_owner(
    role: str,
    lead: Mapping[str, Any],
    reps: Sequence[RepView],
    team: TeamState,
    now: datetime,
    exclude: Collection[str],
) -> tuple[RepView | None, str]:
    """The lead's account owner when they can take it now (a rep of ``role``, active, not
    out of office, under capacity, in working hours); else None and why, to prefix the pool
    rotation's reason (``"account owner sdr-ana out of office …; pool rotation: "``)."""
    account = lead.get("account")
    if not isinstance(account, Mapping) or not account.get("account_id"):
        return None, "lead matched no account; pool rotation: "
    owner_id = account.get("owner")
    if not owner_id:
        return None, f"account {account['account_id']} has no owner; pool rotation: "
    owner = next((rep for rep in reps if rep.id == owner_id), None)
    if owner is None:
        why: str | None = f"is not a {role}"
    elif owner_id in exclude:
        why = "already had this lead"
    else:
        why = unavailable_reason(owner, now, team.assigned_today.get(owner.id, 0))
    if why is None and owner is not None:
        return owner, ""
    return None, f"account owner {owner_id} {why}; pool rotation: "


def _team_manager(
    rule: Rule, reps: Sequence[RepView], managers: Sequence[RepView], now: datetime
) -> RepView | None:
    """The manager of the rule's team: a manager rep of the pool's team, else the manager
    most of the pool's reps report to; an available one first, then any active one."""
    active = [m for m in managers if m.active]
    if rule.pool.team is not None:
        candidates = [m for m in active if m.team == rule.pool.team]
    else:
        bosses = Counter(rep.manager for rep in reps if _in_pool(rep, rule) and rep.manager)
        ranked = sorted(bosses, key=lambda m: (-bosses[m], m))
        by_id = {m.id: m for m in active}
        candidates = [by_id[m] for m in ranked if m in by_id]
    for manager in candidates:
        if unavailable_reason(manager, now, 0) is None:
            return manager
    return candidates[0] if candidates else None
