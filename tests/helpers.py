"""Small helpers for the cross-service tests: tokens, polling, a plain Kafka reader."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from leadflow_shared.testing import auth_header
from leadflow_webhooks.testing import Received, Receiver

T = TypeVar("T")

ADMIN = auth_header("admin", "admin")
MANAGER = auth_header("manager", "mgr-maya")
WEB = auth_header("integration", "website")


async def pg_admin(dsn: str, statements: list[str]) -> None:
    """Run ``statements`` on PostgreSQL as the admin (CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def as_rep(role: str, rep_id: str) -> dict[str, str]:
    return auth_header(role, rep_id)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout_s: float = 30, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


async def read_topic(
    bootstrap: str, topic: str, *, timeout_s: float = 5
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message currently in ``topic``, read by a plain aiokafka consumer (no group)."""
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
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            positions = [await consumer.position(tp) for tp in tps]
            if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                break
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                out.extend(messages)
        return out
    finally:
        await consumer.stop()


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    """(state, number of members) of a consumer group, from the broker's DescribeGroups.

    ``Stable`` means the last rebalance is complete: every member joined and got its
    assignment (the local broker does not report the assignments themselves).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.groups
        _error, _group, state, _ptype, _protocol, members = described
        return str(state), len(members)
    finally:
        await admin.close()


def headers_of(message: ConsumerRecord[bytes, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in message.headers}


def data_of(message: ConsumerRecord[bytes, bytes]) -> dict[str, Any]:
    """The message's JSON data; {} for a message that is not a JSON object (other tests put
    deliberately broken messages on the topics)."""
    try:
        value = json.loads(message.value or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def received_of_type(receiver: Receiver, event_type: str, lead_id: str) -> list[Received]:
    """Webhook deliveries the receiver got for one event type and lead."""
    out = []
    for item in list(receiver.received):
        body = json.loads(item.body)
        if body.get("type") == event_type and body["data"].get("lead_id") == lead_id:
            out.append(item)
    return out
