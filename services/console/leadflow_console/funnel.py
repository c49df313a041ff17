"""The funnel: counts, conversion and time between stages, as pure functions of rows.

The cohort is the leads captured in the window; every count is over that cohort.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leadflow_console.schemas import (
    CampaignBreakdown,
    Funnel,
    FunnelStep,
    SourceBreakdown,
    Timing,
    Window,
)

FUNNEL_STAGES = ("captured", "mql", "assigned", "qualified", "deal", "won")
SIDE_STAGES = ("accepted", "disqualified", "lost", "am_assigned")
ALL_STAGES = FUNNEL_STAGES + SIDE_STAGES


@dataclass(frozen=True)
class JourneyRow:
    """One lead of the cohort: when it reached each stage (absent: not reached)."""

    lead_id: str
    stages: Mapping[str, datetime]
    source: str | None = None
    campaign: str | None = None
    sla_breaches: int = 0


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timing(seconds: Sequence[float]) -> Timing:
    median, p90 = percentile(seconds, 50), percentile(seconds, 90)
    return Timing(
        samples=len(seconds),
        median_seconds=None if median is None else round(median, 3),
        p90_seconds=None if p90 is None else round(p90, 3),
        median_ms=None if median is None else round(median * 1000),
        p90_ms=None if p90 is None else round(p90 * 1000),
    )


def durations(rows: Sequence[JourneyRow], start: str, end: str) -> list[float]:
    """Seconds from ``start`` to ``end`` for each lead that reached both.

    Clocks of different services may disagree by a little; a negative gap counts as 0.
    """
    out: list[float] = []
    for row in rows:
        began, reached = row.stages.get(start), row.stages.get(end)
        if began is not None and reached is not None:
            out.append(max(0.0, (reached - began).total_seconds()))
    return out


def conversion(count: int, previous: int) -> float | None:
    return round(count / previous, 4) if previous else None


def compute_funnel(
    rows: Sequence[JourneyRow], *, window_from: datetime | None, window_to: datetime | None
) -> Funnel:
    """The funnel report over ``rows`` (the leads captured in the window)."""
    counts = {stage: sum(1 for r in rows if stage in r.stages) for stage in ALL_STAGES}
    steps: list[FunnelStep] = []
    for index, stage in enumerate(FUNNEL_STAGES):
        previous = FUNNEL_STAGES[index - 1] if index else None
        steps.append(
            FunnelStep(
                stage=stage,
                count=counts[stage],
                conversion_from_previous=(
                    None if previous is None else conversion(counts[stage], counts[previous])
                ),
                time_from_previous=(
                    None if previous is None else timing(durations(rows, previous, stage))
                ),
            )
        )
    return Funnel(
        window=Window(from_=window_from, to=window_to),
        steps=steps,
        counts=counts,
        speed_to_lead=timing(durations(rows, "captured", "assigned")),
        time_to_accept=timing(durations(rows, "assigned", "accepted")),
        sla_breaches=sum(r.sla_breaches for r in rows),
        by_source=[
            SourceBreakdown(source=key, captured=c, mql=m, won=w)
            for key, c, m, w in _breakdown(rows, lambda r: r.source)
        ],
        by_campaign=[
            CampaignBreakdown(campaign=key, captured=c, mql=m, won=w)
            for key, c, m, w in _breakdown(rows, lambda r: r.campaign)
        ],
    )


def _breakdown(
    rows: Sequence[JourneyRow], key: Callable[[JourneyRow], str | None]
) -> list[tuple[str | None, int, int, int]]:
    """(value, captured, mql, won) per value, the biggest first."""
    totals: dict[str | None, list[int]] = {}
    for row in rows:
        bucket = totals.setdefault(key(row), [0, 0, 0])
        bucket[0] += 1
        bucket[1] += "mql" in row.stages
        bucket[2] += "won" in row.stages
    ordered = sorted(totals.items(), key=lambda item: (-item[1][0], item[0] or ""))
    return [(value, c, m, w) for value, (c, m, w) in ordered]
