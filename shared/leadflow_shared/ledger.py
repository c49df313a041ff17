"""Reading what the system did back from the broker: the routing ledger and consumer lag.

Used by the benchmark (bench/), the fault tests (tests/faults/) and the launcher's drain on
stop. The ledger is read from ``leads.routing`` with a plain consumer: every SDR decision is
a ``lead.assigned`` event with its own CloudEvent id, so two ids for one lead are two
decisions, and one id seen twice is a redelivery (which consumers deduplicate).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from leadflow_shared.messaging.offsets import high_watermarks

# The consumer's counter of events taken from Kafka (messaging.consumer.CONSUMED).
CONSUMED_METRIC = "leadflow_events_consumed_total"


@dataclass
class Ledger:
    """Per lead: the distinct ``lead.assigned`` (role sdr) events on ``leads.routing``
    (by CloudEvent id: two ids are two decisions) and how many messages carried them (one
    event published twice is a redelivery, which consumers deduplicate)."""

    decisions: dict[str, set[str]] = field(default_factory=dict)
    messages: Counter[str] = field(default_factory=Counter)

    def decided(self, lead_id: str) -> int:
        return len(self.decisions.get(lead_id, ()))

    def check(self, lead_ids: set[str] | None = None) -> dict[str, Any]:
        ids = set(self.decisions) if lead_ids is None else lead_ids
        lost = [k for k in ids if self.decided(k) == 0]
        twice = {k: self.decided(k) for k in ids if self.decided(k) > 1}
        redelivered = sum(1 for k in ids if self.messages.get(k, 0) > self.decided(k))
        return {
            "leads": len(ids),
            "assigned_exactly_once": sum(1 for k in ids if self.decided(k) == 1),
            "not_assigned": len(lost),
            "assigned_more_than_once": len(twice),
            "leads_with_redelivered_messages": redelivered,
            "examples_not_assigned": lost[:5],
            "examples_twice": dict(list(twice.items())[:5]),
            "ok": not lost and not twice,
        }


async def read_ledger(
    bootstrap: str, topic: str = "leads.routing", timeout_s: float = 60
) -> Ledger:
    """The ledger, read from the beginning of ``topic`` by a plain consumer (no group)."""
    ledger = Ledger()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=10
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            for messages in batch.values():
                for m in messages:
                    headers = dict(m.headers)
                    if headers.get("ce_type") != b"lead.assigned":
                        continue
                    with contextlib.suppress(ValueError):
                        data = json.loads(m.value or b"{}")
                        if isinstance(data, dict) and data.get("role") == "sdr":
                            lead_id = str(data.get("lead_id"))
                            event_id = (headers.get("ce_id") or b"").decode() or (
                                f"{m.partition}:{m.offset}"
                            )
                            ledger.decisions.setdefault(lead_id, set()).add(event_id)
                            ledger.messages[lead_id] += 1
        else:
            raise TimeoutError(f"reading {topic} took more than {timeout_s}s")
    finally:
        await consumer.stop()
    return ledger


async def group_lag(
    bootstrap: str, groups: dict[str, set[str]], *, only_committed: bool = False
) -> dict[str, int | None]:
    """Messages not yet committed per consumer group ({group: its topics}); None if the
    broker would not tell. Uses ``committed()`` (the local broker's admin API cannot).
    ``only_committed``: count only partitions the group has committed on (for callers that
    do not know which topics a group reads and pass them all)."""
    out: dict[str, int | None] = {}
    for group, topics in groups.items():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        try:
            async with asyncio.timeout(10):
                await consumer.start()
                tps = [
                    TopicPartition(t, p)
                    for t in sorted(topics)
                    for p in sorted(consumer.partitions_for_topic(t) or ())
                ]
                ends = await high_watermarks(bootstrap, tps) if tps else {}
                lag = 0
                for tp in tps:
                    committed = await consumer.committed(tp)
                    if committed is None and only_committed:
                        continue
                    # The local broker has reported a committed offset past the end.
                    lag += max(0, ends[tp] - (committed or 0))
                out[group] = lag
        except Exception:
            out[group] = None
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
    return out


def consumer_groups(metrics_text: str) -> dict[str, set[str]]:
    """{consumer group: the topics it consumed from} as a service's ``/metrics`` names them
    (``leadflow_events_consumed_total{consumer=..., topic=...}``): each group's own topics,
    so a lag check asks about those and not about every topic of the system."""
    groups: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == CONSUMED_METRIC and "consumer" in labels and "topic" in labels:
                groups.setdefault(labels["consumer"], set()).add(labels["topic"])
    return groups
