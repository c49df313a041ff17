"""Decision replay: every routing decision stores what it was made from, and can be made
again from that alone — the lead as routing saw it, the rules version, the directory of the
configuration version (``config_snapshots``), the counters (strategy state), the reps
excluded and the time — to show that the same owner results, or name what differs."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadflow_routing.decisions import NoRepAvailable, RoutingDecision, TeamState, decide
from leadflow_routing.models import ConfigSnapshot, Decision
from leadflow_routing.rules.document import DEFAULT_RULES, RuleSet
from leadflow_routing.strategies import RotationStats
from leadflow_routing.team.availability import rep_from_snapshot

# History entries that are routing decisions (made by ``decide``), and the owner each
# records as the decision's outcome (None: nobody could take the lead).
ROUTING_KINDS = frozenset({"assigned", "reassigned", "waiting", "escalated"})


def decision_inputs(
    role: str,
    lead: Mapping[str, Any],
    exclude: Collection[str],
    team: TeamState,
    waiting_since: datetime | None = None,
) -> dict[str, Any]:
    """The inputs of one decision as JSON: the lead's attributes, the excluded reps, since
    when the lead waited and the role's counters (the strategy state)."""
    prefix = f"{role}:"
    return {
        "lead": dict(lead),
        "exclude": sorted(exclude),
        "waiting_since": waiting_since.isoformat() if waiting_since else None,
        "state": {
            "assigned_today": dict(team.assigned_today),
            "open_load": dict(team.open_load),
            "rotation": {
                pool: {
                    rep: [
                        s.assigned_count,
                        s.last_assigned_at.isoformat() if s.last_assigned_at else None,
                    ]
                    for rep, s in stats.items()
                }
                for pool, stats in team.rotation.items()
                if pool.startswith(prefix)
            },
            "credit": {
                pool: dict(credit)
                for pool, credit in team.credit.items()
                if pool.startswith(prefix)
            },
        },
    }


def team_from_inputs(state: Mapping[str, Any]) -> TeamState:
    return TeamState(
        assigned_today=dict(state.get("assigned_today", {})),
        open_load=dict(state.get("open_load", {})),
        rotation={
            pool: {
                rep: RotationStats(count, datetime.fromisoformat(at) if at else None)
                for rep, (count, at) in stats.items()
            }
            for pool, stats in state.get("rotation", {}).items()
        },
        credit={pool: dict(credit) for pool, credit in state.get("credit", {}).items()},
    )


def recorded_owner(decision: Decision) -> str | None:
    """The owner the decision chose (None when it found nobody: waiting, escalated)."""
    return decision.owner if decision.kind in {"assigned", "reassigned"} else None


@dataclass(frozen=True)
class Replayed:
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


def replay(decision: Decision, snapshot: ConfigSnapshot | None, rules: RuleSet | None) -> Replayed:
    """Make ``decision`` again from its recorded inputs. ``snapshot``: the directory of its
    configuration version; ``rules``: its rules version's document (None: not found)."""
    owner = recorded_owner(decision)
    rule = decision.rule if owner is not None else None

    def result(
        match: bool | None,
        mismatch: str | None,
        outcome: RoutingDecision | NoRepAvailable | None = None,
    ) -> Replayed:
        return Replayed(
            decision_id=decision.id,
            kind=decision.kind,
            role=decision.role,
            at=decision.at,
            rules_version=decision.rules_version,
            config_version=decision.config_version,
            recorded_owner=owner,
            recorded_rule=rule,
            replayed_owner=outcome.owner if isinstance(outcome, RoutingDecision) else None,
            replayed_rule=outcome.rule if isinstance(outcome, RoutingDecision) else None,
            replayed_reason=outcome.reason if outcome is not None else None,
            match=match,
            mismatch=mismatch,
        )

    inputs = decision.inputs
    if inputs is None or decision.role is None or decision.rules_version is None:
        return result(None, "not replayable: recorded before decisions stored their inputs")
    if snapshot is None:
        return result(False, f"directory snapshot {decision.config_version} is missing")
    if rules is None:
        return result(False, f"rules version {decision.rules_version} is missing")
    if snapshot.rules_version != decision.rules_version:
        return result(
            False,
            f"rules version: the decision says {decision.rules_version}, its configuration "
            f"version {snapshot.rules_version}",
        )
    directory = sorted((rep_from_snapshot(r) for r in snapshot.reps), key=lambda r: r.id)
    waited = inputs.get("waiting_since")
    outcome = decide(
        decision.role,
        inputs.get("lead", {}),
        rules,
        [rep for rep in directory if rep.role == decision.role],
        team_from_inputs(inputs.get("state", {})),
        decision.at,
        exclude=inputs.get("exclude", ()),
        waiting_since=datetime.fromisoformat(waited) if waited else None,
        managers=[rep for rep in directory if rep.role == "manager"],
    )
    got = outcome.owner if isinstance(outcome, RoutingDecision) else None
    got_rule = outcome.rule if isinstance(outcome, RoutingDecision) else None
    differences = []
    if got != owner:
        differences.append(f"owner: recorded {owner or 'nobody'}, replayed {got or 'nobody'}")
    if got_rule != rule:
        differences.append(f"rule: recorded {rule or 'none'}, replayed {got_rule or 'none'}")
    return result(not differences, "; ".join(differences) or None, outcome)


def rules_of(document: dict[str, Any] | None, version: int) -> RuleSet | None:
    if version == 0:
        return DEFAULT_RULES
    return None if document is None else RuleSet.model_validate(document)
