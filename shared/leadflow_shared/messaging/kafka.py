"""aiokafka construction in one place, so every service talks to the broker alike."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

log = logging.getLogger(__name__)


def new_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    """A producer waiting for all in-sync replicas. Not idempotent: the local Tansu broker
    lacks InitProducerId; consumers deduplicate by event id instead."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        acks="all",
        linger_ms=0,
        request_timeout_ms=15_000,
    )


async def create_topics(
    bootstrap_servers: str, topics: Iterable[str], partitions: int = 6, replication: int = 1
) -> list[str]:
    """Create the topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="leadflow-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            await admin.create_topics([NewTopic(name, partitions, replication) for name in missing])
            log.info("created topics", extra={"fields": {"topics": missing}})
        return missing
    finally:
        await admin.close()
