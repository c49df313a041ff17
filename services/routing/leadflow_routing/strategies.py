"""Choosing one rep among the available ones of a pool. Pure and deterministic.

Fairness: round-robin always picks a rep with the fewest leads from the pool (ties: the one
waiting longest, then by id), so among reps who stay available the counts never differ by
more than one, whatever the arrival order. The counts live in the database (``rep_counters``)
and are updated in the assignment's transaction under one decision lock, so this holds
across replicas and across several decisions in one transaction. Weighted rotation keeps
a credit per rep and pool in the same table (see :func:`assign_weighted`).
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


def weight_units(rep: RepView) -> int:
    """A rep's weight in whole hundredths (weights are 0.01-100), so rotation state is exact
    integer arithmetic."""
    return max(1, round(rep.weight * 100))


def assign_weighted(
    reps: list[RepView], stats: Mapping[str, RotationStats], credit: Mapping[str, int]
) -> tuple[RepView, str, dict[str, int]]:
    """Smooth weighted rotation: weights 3:1 give A A B A A A B A …, never 30 then 10, and
    each rep's count stays within one lead of their weighted share at every point.

    Each rep of the pool has a ``credit`` (what they are owed, in weight units): every
    decision credits each available rep with their weight and debits the chosen one the
    total weight of the available reps (nginx's smooth weighted round robin). The rep
    chosen is, among those owed something (credit > 0), the one with the highest weight per
    lead received plus one (the quota method of apportionment, which keeps every count
    between the floor and the ceiling of its share, where nginx's rule may drift past it);
    ties: the most owed, the heavier, then by id. Returns the chosen rep, why, and the
    credit changes to store (one per available rep; they sum to zero).

    Credits of the pool's reps sum to zero; a rep who is away keeps theirs (so a return
    brings no burst of catch-up leads), and the credits of those present are judged net of
    what the absent hold (spread over those present by weight), so someone owed while away
    never stalls the others' rotation."""
    total = sum(weight_units(rep) for rep in reps)
    held = sum(credit.get(rep.id, 0) for rep in reps)  # not zero while someone is away
    # Credit after this decision's share, net of ``held``, times ``total`` (exact integers);
    # these sum to total², so someone is always owed.
    after = {
        rep.id: (credit.get(rep.id, 0) + weight_units(rep)) * total - held * weight_units(rep)
        for rep in reps
    }

    def key(rep: RepView) -> tuple[float, int, int, str]:
        count = stats.get(rep.id, RotationStats()).assigned_count
        # The id inverted so that max() takes the first id on a full tie.
        return (weight_units(rep) / (count + 1), after[rep.id], weight_units(rep), _desc(rep.id))

    chosen = max((rep for rep in reps if after[rep.id] > 0), key=key)
    changes = {rep.id: weight_units(rep) for rep in reps}
    changes[chosen.id] -= total
    count = stats.get(chosen.id, RotationStats()).assigned_count
    return (
        chosen,
        f"smooth weighted rotation: furthest below the weighted share "
        f"({count} leads from this pool, weight {chosen.weight:g} of {total / 100:g})",
        changes,
    )


def _desc(text: str) -> str:
    """Orders strings in reverse under ``max`` (for a first-by-id tie-break)."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


def assign_load_balanced(
    reps: list[RepView], stats: Mapping[str, RotationStats], open_load: Mapping[str, int]
) -> tuple[RepView, str]:
    def key(rep: RepView) -> tuple[float, int, datetime, str]:
        s = stats.get(rep.id, RotationStats())
        load = open_load.get(rep.id, 0) / rep.weight
        return (load, s.assigned_count, s.last_assigned_at or _NEVER, rep.id)

    chosen = min(reps, key=key)
    return chosen, f"fewest open leads ({open_load.get(chosen.id, 0)})"
