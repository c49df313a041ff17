"""The funnel math, over plain rows (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leadflow_console.funnel import FUNNEL_STAGES, JourneyRow, compute_funnel, percentile

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def lead(
    lead_id: str, source: str | None = "web", campaign: str | None = None, **offsets_s: float
) -> JourneyRow:
    """A lead captured at T0 that reached each named stage ``offset`` seconds later."""
    stages = {"captured": T0, **{k: T0 + timedelta(seconds=v) for k, v in offsets_s.items()}}
    return JourneyRow(lead_id=lead_id, source=source, campaign=campaign, stages=stages)


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 0.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0], 90) == 81.0


def test_counts_follow_the_funnel_order_with_conversion_from_the_previous_step() -> None:
    rows = [
        lead("a", mql=60, assigned=120, qualified=600, deal=700, won=9000),
        lead("b", mql=30, assigned=90, qualified=300),
        lead("c", mql=10),
        lead("d"),
    ]
    funnel = compute_funnel(rows, window_from=None, window_to=None)

    assert [s.stage for s in funnel.steps] == list(FUNNEL_STAGES)
    assert [s.count for s in funnel.steps] == [4, 3, 2, 2, 1, 1]
    assert [s.conversion_from_previous for s in funnel.steps] == [None, 0.75, 0.6667, 1.0, 0.5, 1.0]
    assert funnel.steps[0].time_from_previous is None


def test_time_between_stages_is_median_and_p90_over_leads_that_reached_both() -> None:
    rows = [lead(str(i), mql=10.0 * i) for i in range(1, 11)] + [lead("never")]
    mql_step = compute_funnel(rows, window_from=None, window_to=None).steps[1]

    timing = mql_step.time_from_previous
    assert timing is not None
    assert timing.samples == 10
    assert timing.median_seconds == 55.0
    assert timing.p90_seconds == 91.0
    assert timing.median_ms == 55_000


def test_speed_to_lead_is_capture_to_first_sdr_assignment_in_seconds_and_ms() -> None:
    rows = [lead("a", assigned=0.25), lead("b", assigned=0.75), lead("c", assigned=2.0), lead("d")]
    speed = compute_funnel(rows, window_from=None, window_to=None).speed_to_lead

    assert speed.samples == 3
    assert speed.median_seconds == 0.75
    assert speed.median_ms == 750
    assert speed.p90_ms == 1750


def test_a_stage_stamped_before_its_predecessor_counts_as_zero_not_negative() -> None:
    rows = [lead("skewed", assigned=-3)]
    speed = compute_funnel(rows, window_from=None, window_to=None).speed_to_lead
    assert speed.median_seconds == 0.0


def test_empty_cohort_has_zero_counts_and_no_rates_or_times() -> None:
    funnel = compute_funnel([], window_from=T0, window_to=T0 + timedelta(hours=1))

    assert all(s.count == 0 for s in funnel.steps)
    assert all(s.conversion_from_previous is None for s in funnel.steps)
    assert funnel.speed_to_lead.median_seconds is None and funnel.speed_to_lead.samples == 0
    assert funnel.by_source == [] and funnel.sla_breaches == 0
    dumped = funnel.model_dump(mode="json", by_alias=True)
    assert dumped["window"] == {"from": "2026-11-02T09:00:00Z", "to": "2026-11-02T10:00:00Z"}


def test_side_stages_and_sla_breaches_are_counted() -> None:
    rows = [
        lead("a", assigned=5, accepted=50, disqualified=70),
        lead("b", assigned=5, accepted=20, qualified=40, deal=50, lost=90, am_assigned=100),
        JourneyRow(lead_id="c", stages={"captured": T0}, sla_breaches=2),
    ]
    funnel = compute_funnel(rows, window_from=None, window_to=None)

    assert funnel.counts["accepted"] == 2
    assert funnel.counts["disqualified"] == 1
    assert funnel.counts["lost"] == 1
    assert funnel.counts["am_assigned"] == 1
    assert funnel.sla_breaches == 2
    assert funnel.time_to_accept.median_seconds == 30.0


@pytest.mark.parametrize("dimension", ["source", "campaign"])
def test_breakdown_counts_captured_mql_and_won_per_value_biggest_first(dimension: str) -> None:
    def row(lead_id: str, value: str | None, **stages: float) -> JourneyRow:
        return lead(lead_id, **{dimension: value}, **stages)  # type: ignore[arg-type]

    rows = [
        row("a", "ads", mql=1, won=9),
        row("b", "ads", mql=1),
        row("c", "ads"),
        row("d", None, mql=1),
        row("e", "event", won=3),
    ]
    funnel = compute_funnel(rows, window_from=None, window_to=None)
    breakdown = funnel.by_source if dimension == "source" else funnel.by_campaign

    assert [(getattr(b, dimension), b.captured, b.mql, b.won) for b in breakdown] == [
        ("ads", 3, 2, 1),
        (None, 1, 1, 0),
        ("event", 1, 0, 1),
    ]
