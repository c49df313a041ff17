"""Exactly-once effects over at-least-once delivery, and dead letters that do not block."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from leadflow_launcher.system import System
from tests.helpers import MANAGER, WEB, data_of, eventually, headers_of, read_topic


async def _new_lead(http: httpx.AsyncClient, urls: dict[str, str], email: str) -> str:
    r = await http.post(
        f"{urls['lead-intake']}/v1/leads",
        headers=WEB,
        json={
            "email": email,
            "company": "Smallco",
            "country": "DE",
            "employees": 20,
            "title": "Analyst",
        },
    )
    assert r.status_code == 202, r.text
    return str(r.json()["lead_id"])


async def _score(http: httpx.AsyncClient, urls: dict[str, str], lead_id: str) -> dict[str, Any]:
    r = await http.get(f"{urls['scoring']}/v1/scores/{lead_id}", headers=MANAGER)
    return r.json() if r.status_code == 200 else {}


async def _scored_rows(system: System, lead_id: str) -> int:
    """How many ``lead.scored`` events scoring's outbox holds for ``lead_id``: each handled
    ``lead.captured`` adds one in the handler's own transaction (rescoring a profile is not
    idempotent), so a redelivery that slipped past ``processed_events`` shows up here."""
    dsn = system.env["DATABASE_URL_SCORING"].replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM outbox WHERE event_type = 'lead.scored' AND key = $1", lead_id
        )
    finally:
        await conn.close()
    return int(count)


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int:
    """The consumer group's committed offset on ``tp`` (-1 when none)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return await consumer.committed(tp) or -1
    finally:
        await consumer.stop()


async def test_redelivered_event_has_no_second_effect(system: System, urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        lead_id = await _new_lead(http, urls, "redelivery@smallco.io")

        async def scored() -> dict[str, Any] | None:
            return await _score(http, urls, lead_id) or None

        await eventually(scored, what="lead scored")
        assert await _scored_rows(system, lead_id) == 1

    # Redeliver the very same lead.captured (same ce_id), as Kafka may after a crash. Without
    # the processed_events claim, scoring would handle it again: store the profile, rescore
    # and stage a second lead.scored.
    (original,) = [
        m
        for m in await read_topic(system.bootstrap_servers, "leads.captured")
        if data_of(m).get("lead_id") == lead_id and headers_of(m)["ce_type"] == "lead.captured"
    ]
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap_servers)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            "leads.captured", original.value, key=original.key, headers=list(original.headers)
        )
    finally:
        await producer.stop()

    # Scoring has consumed past the duplicate once its committed offset passes it (offsets
    # are committed only after the handling transaction commits).
    tp = TopicPartition("leads.captured", sent.partition)

    async def consumed_past() -> bool:
        return await _committed(system.bootstrap_servers, "scoring", tp) > int(sent.offset)

    await eventually(consumed_past, what="scoring's offset past the redelivered event")
    assert await _scored_rows(system, lead_id) == 1, "the redelivered event was handled twice"


async def test_unparseable_message_lands_in_dlq_and_consumer_carries_on(
    system: System, urls: dict[str, str]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            "leads.captured",
            b"{not json",
            key=b"garbage-1",
            headers=[("ce_type", b"lead.captured")],
        )
    finally:
        await producer.stop()

    async def dead_letter() -> list[Any] | None:
        messages = [
            m
            for m in await read_topic(system.bootstrap_servers, "routing.dlq")
            if m.key == b"garbage-1"
        ]
        return messages or None

    (letter,) = await eventually(dead_letter, what="routing.dlq message")
    headers = headers_of(letter)
    assert headers["dlq_original_topic"] == "leads.captured"
    assert headers["dlq_original_offset"].isdigit()
    assert headers["dlq_original_partition"].isdigit()
    assert "ce_specversion" in headers["dlq_error"] or "missing" in headers["dlq_error"]
    assert headers["dlq_attempts"] == "1"
    assert letter.value == b"{not json"

    # The consumer carried on: a new MQL is still routed.
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{urls['lead-intake']}/v1/leads",
            headers=WEB,
            json={
                "email": "after-dlq@bigcorp.com",
                "company": "BigCorp",
                "title": "Chief Revenue Officer",
                "country": "CA",
                "employees": 1200,
                "industry": "software",
            },
        )
        lead_id = r.json()["lead_id"]

        async def routed() -> dict[str, Any] | None:
            r = await http.get(f"{urls['routing']}/v1/assignments/{lead_id}", headers=MANAGER)
            return r.json() if r.status_code == 200 and r.json()["owners"]["sdr"] else None

        await eventually(routed, what="routing after a dead letter")
