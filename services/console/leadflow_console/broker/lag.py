"""Lag, rate and the topics report, as pure functions of offsets already read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from leadflow_console.schemas import (
    DeadLetters,
    GroupLag,
    GroupTotal,
    PartitionEnd,
    PartitionLag,
    TopicReport,
    TopicsReport,
)

# topic -> partition -> offset
Offsets = Mapping[str, Mapping[int, int]]
# group -> topic -> partition -> committed offset (None: never committed)
Committed = Mapping[str, Mapping[str, Mapping[int, int | None]]]


@dataclass(frozen=True)
class OffsetsSample:
    """End offsets of the existing topics at one moment (``time.monotonic()`` seconds)."""

    taken_at: float
    ends: Offsets


def partition_lag(end: int, committed: int | None) -> int:
    """Messages the group has yet to commit; a partition never committed lags by all of
    it (groups start from the earliest offset)."""
    return max(0, end - (committed or 0))


def group_lag(
    group: str, ends: Mapping[int, int], committed: Mapping[int, int | None]
) -> GroupLag | None:
    """A group's lag on one topic; None when it never committed there (not a reader)."""
    if all(committed.get(p) is None for p in ends):
        return None
    partitions = [
        PartitionLag(
            partition=p,
            committed=committed.get(p),
            lag=partition_lag(end, committed.get(p)),
        )
        for p, end in sorted(ends.items())
    ]
    return GroupLag(group=group, lag=sum(p.lag for p in partitions), partitions=partitions)


def rate_per_second(history: Sequence[OffsetsSample], topic: str, window_s: float) -> float | None:
    """Messages/s appended to ``topic`` between the oldest sample inside the window (or,
    failing that, the previous sample) and the newest one. None without two samples of
    the topic, or when offsets went backwards (the in-memory broker restarted)."""
    if len(history) < 2 or topic not in history[-1].ends:
        return None
    newest = history[-1]
    earlier = [s for s in history[:-1] if topic in s.ends]
    if not earlier:
        return None
    in_window = [s for s in earlier if newest.taken_at - s.taken_at <= window_s]
    base = in_window[0] if in_window else earlier[-1]
    elapsed = newest.taken_at - base.taken_at
    if elapsed <= 0:
        return None
    appended = sum(newest.ends[topic].values()) - sum(base.ends[topic].values())
    if appended < 0:
        return None
    return round(appended / elapsed, 3)


def build_topics_report(
    *,
    topics: Sequence[str],
    dead_letter_topics: Sequence[str],
    ends: Offsets,
    committed: Committed,
    history: Sequence[OffsetsSample],
    window_s: float,
    sampled_at: datetime,
) -> TopicsReport:
    """Every topic (a missing one shows ``exists: false``), lag per group, dead letters."""
    dlq = set(dead_letter_topics)
    reports: list[TopicReport] = []
    group_totals: dict[str, tuple[int, list[str]]] = {g: (0, []) for g in committed}
    for topic in topics:
        topic_ends = ends.get(topic)
        if topic_ends is None:
            reports.append(
                TopicReport(
                    topic=topic,
                    exists=False,
                    dead_letter=topic in dlq,
                    partitions=[],
                    messages=0,
                    rate_per_second=None,
                    groups=[],
                )
            )
            continue
        groups: list[GroupLag] = []
        for group, group_offsets in committed.items():
            lag = group_lag(group, topic_ends, group_offsets.get(topic, {}))
            if lag is not None:
                groups.append(lag)
                total, read = group_totals[group]
                group_totals[group] = (total + lag.lag, [*read, topic])
        reports.append(
            TopicReport(
                topic=topic,
                exists=True,
                dead_letter=topic in dlq,
                partitions=[
                    PartitionEnd(partition=p, end_offset=end)
                    for p, end in sorted(topic_ends.items())
                ],
                messages=sum(topic_ends.values()),
                rate_per_second=rate_per_second(history, topic, window_s),
                groups=groups,
            )
        )
    dead = {r.topic: r.messages for r in reports if r.dead_letter}
    return TopicsReport(
        sampled_at=sampled_at,
        rate_window_seconds=window_s,
        topics=reports,
        groups=[
            GroupTotal(group=g, lag=total, topics=read) for g, (total, read) in group_totals.items()
        ],
        dead_letters=DeadLetters(total=sum(dead.values()), by_topic=dead),
    )
