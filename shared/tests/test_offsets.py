"""End offsets after batched produces: the embedded broker's ListOffsets answer is short
(the base offset of the last batch + 1); ``high_watermarks`` is right."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from leadflow_shared.broker import EmbeddedBroker
from leadflow_shared.ids import new_id
from leadflow_shared.messaging import create_topics
from leadflow_shared.messaging.offsets import high_watermarks


async def test_high_watermarks_count_every_record_of_a_batch(broker: EmbeddedBroker) -> None:
    topic = f"offsets-{new_id()}"
    await create_topics(broker.bootstrap_servers, [topic], partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=20)
    await producer.start()
    try:
        for _ in range(2):  # two rounds of ten records, each sent as one batch
            futures = [await producer.send(topic, b"x", partition=0) for _ in range(10)]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        listed = await consumer.end_offsets(tps)
        ends = await high_watermarks(broker.bootstrap_servers, tps)
    finally:
        await consumer.stop()
    assert ends == {tps[0]: 20, tps[1]: 0}
    # What the broker's ListOffsets says: never more; on this broker, less (a batch counts 1).
    assert listed[tps[0]] <= 20
