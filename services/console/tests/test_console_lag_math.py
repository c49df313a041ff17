"""Lag, rate and the topics report, over offsets already read (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime

from leadflow_console.broker.lag import (
    OffsetsSample,
    build_topics_report,
    group_lag,
    partition_lag,
    rate_per_second,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def sample(at: float, **topics: dict[int, int]) -> OffsetsSample:
    return OffsetsSample(taken_at=at, ends={t.replace("_", "."): e for t, e in topics.items()})


def test_partition_lag_is_end_minus_committed_and_never_negative() -> None:
    assert partition_lag(10, 4) == 6
    assert partition_lag(10, 10) == 0
    assert partition_lag(3, 5) == 0
    assert partition_lag(7, None) == 7


def test_group_lag_sums_partitions_and_counts_uncommitted_ones_from_the_start() -> None:
    lag = group_lag("scoring", {0: 10, 1: 5, 2: 0}, {0: 8, 1: None, 2: None})
    assert lag is not None
    assert lag.lag == 7
    assert [(p.partition, p.committed, p.lag) for p in lag.partitions] == [
        (0, 8, 2),
        (1, None, 5),
        (2, None, 0),
    ]


def test_a_group_that_never_committed_on_a_topic_is_not_its_reader() -> None:
    assert group_lag("webhooks", {0: 10, 1: 5}, {0: None, 1: None}) is None
    assert group_lag("webhooks", {0: 10}, {}) is None


def test_rate_spans_the_oldest_sample_inside_the_window() -> None:
    history = [
        sample(0.0, leads_captured={0: 0}),  # outside a 10 s window
        sample(4.0, leads_captured={0: 100, 1: 0}),
        sample(8.0, leads_captured={0: 150, 1: 10}),
        sample(12.0, leads_captured={0: 180, 1: 40}),
    ]
    assert rate_per_second(history, "leads.captured", window_s=10) == 15.0  # (220-100)/8


def test_rate_falls_back_to_the_previous_sample_when_the_window_is_shorter_than_a_tick() -> None:
    history = [sample(0.0, t={0: 0}), sample(5.0, t={0: 10})]
    assert rate_per_second(history, "t", window_s=1) == 2.0


def test_rate_is_unknown_without_two_samples_or_when_offsets_went_backwards() -> None:
    assert rate_per_second([], "t", 10) is None
    assert rate_per_second([sample(0.0, t={0: 5})], "t", 10) is None
    assert rate_per_second([sample(0.0), sample(3.0, t={0: 5})], "t", 10) is None
    restarted = [sample(0.0, t={0: 500}), sample(3.0, t={0: 2})]
    assert rate_per_second(restarted, "t", 10) is None


def test_report_shows_missing_topics_lag_per_reading_group_and_dead_letters() -> None:
    report = build_topics_report(
        topics=["leads.captured", "leads.scored", "scoring.dlq", "routing.dlq"],
        dead_letter_topics=["scoring.dlq", "routing.dlq"],
        ends={"leads.captured": {0: 10, 1: 6}, "scoring.dlq": {0: 3}},
        committed={
            "scoring": {"leads.captured": {0: 10, 1: 2}, "scoring.dlq": {0: None}},
            "console": {"leads.captured": {0: 9, 1: None}, "scoring.dlq": {0: None}},
            "deals": {"leads.captured": {0: None, 1: None}},
        },
        history=[
            sample(0.0, leads_captured={0: 4, 1: 2}),
            sample(3.0, leads_captured={0: 10, 1: 6}),
        ],
        window_s=15,
        sampled_at=NOW,
    )
    by_name = {t.topic: t for t in report.topics}

    captured = by_name["leads.captured"]
    assert captured.exists and captured.messages == 16
    assert [(p.partition, p.end_offset) for p in captured.partitions] == [(0, 10), (1, 6)]
    assert captured.rate_per_second == 3.333
    assert [(g.group, g.lag) for g in captured.groups] == [("scoring", 4), ("console", 7)]

    assert not by_name["leads.scored"].exists and by_name["leads.scored"].groups == []
    assert by_name["scoring.dlq"].dead_letter and by_name["scoring.dlq"].messages == 3
    assert not by_name["routing.dlq"].exists

    assert report.dead_letters.total == 3
    assert report.dead_letters.by_topic == {"scoring.dlq": 3, "routing.dlq": 0}
    assert [(g.group, g.lag, g.topics) for g in report.groups] == [
        ("scoring", 4, ["leads.captured"]),
        ("console", 7, ["leads.captured"]),
        ("deals", 0, []),
    ]
