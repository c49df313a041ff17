"""Choosing one rep among the available ones of a pool. Pure and deterministic.

Fairness: round-robin always picks a rep with the fewest leads from the pool (ties: the one
waiting longest, then by id), so among reps who stay available the counts never differ by
more than one, whatever the arrival order. The counts live in the database (``rep_counters``)
and are updated in the assignment's transaction under one decision lock, so this holds
across replicas and across several decisions in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from leadflow_routing.team.availability import RepView

_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RotationStats:
    assigned_count: int = 0
    last_assigned_at: datetime | None = None


def assign_round_robin(
    reps: list[RepView], stats: Mapping[str, RotationStats]
) -> tuple[RepView, str]:
    def key(rep: RepView) -> tuple[int, datetime, str]:
        s = stats.get(rep.id, RotationStats())
        return (s.assigned_count, s.last_assigned_at or _NEVER, rep.id)

    chosen = min(reps, key=key)
    count = stats.get(chosen.id, RotationStats()).assigned_count
    return chosen, f"fewest leads from this pool so far ({count}), longest waiting"


def assign_weighted(reps: list[RepView], stats: Mapping[str, RotationStats]) -> tuple[RepView, str]:
    def key(rep: RepView) -> tuple[float, datetime, str]:
        s = stats.get(rep.id, RotationStats())
        return ((s.assigned_count + 1) / rep.weight, s.last_assigned_at or _NEVER, rep.id)

    chosen = min(reps, key=key)
    count = stats.get(chosen.id, RotationStats()).assigned_count
    return chosen, f"lowest leads-per-weight ({count} leads, weight {chosen.weight:g})"


def assign_load_balanced(
    reps: list[RepView], stats: Mapping[str, RotationStats], open_load: Mapping[str, int]
) -> tuple[RepView, str]:
    def key(rep: RepView) -> tuple[float, int, datetime, str]:
        s = stats.get(rep.id, RotationStats())
        load = open_load.get(rep.id, 0) / rep.weight
        return (load, s.assigned_count, s.last_assigned_at or _NEVER, rep.id)

    chosen = min(reps, key=key)
    return chosen, f"fewest open leads ({open_load.get(chosen.id, 0)})"
