"""Replaying dead letters: back to their original topic, once each.

A replayed message keeps its key, value and CloudEvents headers (so its ``ce_id``): every
consumer group of the original topic sees it again, and those that already handled it skip
it as a duplicate. The replayer commits its own group's offsets on the DLQ topic, so a
second replay does not resend what the first one sent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition

from leadflow_shared.messaging.kafka import new_producer
from leadflow_shared.messaging.offsets import high_watermarks
from leadflow_shared.observability import log_fields

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    replayed: int = 0
    skipped: int = 0


async def replay_dead_letters(
    bootstrap_servers: str,
    dlq_topic: str,
    *,
    only_original_topic: str | None = None,
    timeout_s: float = 30,
) -> ReplayReport:
    """Re-produce every not-yet-replayed message of ``dlq_topic`` to its original topic."""
    group = f"{dlq_topic}.replayer"
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    producer = new_producer(bootstrap_servers, client_id=group)
    await consumer.start()
    await producer.start()
    report = ReplayReport()
    try:
        partitions = consumer.partitions_for_topic(dlq_topic) or set()
        tps = [TopicPartition(dlq_topic, p) for p in sorted(partitions)]
        if not tps:
            return report
        ends = await high_watermarks(bootstrap_servers, tps)
        consumer.assign(tps)
        for tp in tps:
            committed = await consumer.committed(tp)
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = {tp: await consumer.position(tp) for tp in tps}
            if all(positions[tp] >= ends[tp] for tp in tps):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset >= ends[tp]:
                        continue
                    headers = dict(message.headers)
                    original = headers.get("dlq_original_topic", b"").decode()
                    if not original or (only_original_topic and original != only_original_topic):
                        report.skipped += 1
                        continue
                    kept = [(k, v) for k, v in message.headers if not k.startswith("dlq_")]
                    await producer.send_and_wait(
                        original, message.value, key=message.key, headers=kept
                    )
                    report.replayed += 1
                if messages:
                    await consumer.commit({tp: messages[-1].offset + 1})
        log.info(
            "dead letters replayed",
            extra=log_fields(dlq=dlq_topic, replayed=report.replayed, skipped=report.skipped),
        )
        return report
    finally:
        await producer.stop()
        await consumer.stop()
