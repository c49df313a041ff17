"""Exactly-once effects over at-least-once delivery, and dead letters that do not block."""

from __future__ import annotations

from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

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


async def test_redelivered_event_has_no_second_effect(system: System, urls: dict[str, str]) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        lead_id = await _new_lead(http, urls, "redelivery@smallco.io")
        r = await http.post(
            f"{urls['lead-intake']}/v1/engagements",
            headers=WEB,
            json={"lead_id": lead_id, "type": "pricing_page_view"},
        )
        assert r.status_code == 202
        engagement_id = r.json()["engagement_id"]

        async def engaged() -> dict[str, Any] | None:
            s = await _score(http, urls, lead_id)
            return s if s.get("engagement", 0) > 0 else None

        before = await eventually(engaged, what="engagement scored")

        # Redeliver the very same engagement event (same ce_id), as Kafka may after a crash.
        (original,) = [
            m
            for m in await read_topic(system.bootstrap_servers, "leads.engagement")
            if data_of(m).get("engagement_id") == engagement_id
        ]
        producer = AIOKafkaProducer(bootstrap_servers=system.bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(
                "leads.engagement", original.value, key=original.key, headers=list(original.headers)
            )
        finally:
            await producer.stop()
        # A fresh engagement afterwards proves the consumer has moved past the duplicate.
        r = await http.post(
            f"{urls['lead-intake']}/v1/engagements",
            headers=WEB,
            json={"lead_id": lead_id, "type": "email_click"},
        )
        assert r.status_code == 202

        async def clicked() -> dict[str, Any] | None:
            s = await _score(http, urls, lead_id)
            factors = " ".join(f["factor"] for f in s.get("explanation", []))
            return s if "email_click" in factors else None

        after = await eventually(clicked, what="second engagement scored")
        pricing = [f for f in after["explanation"] if "pricing_page_view" in f["factor"]]
        before_pricing = [f for f in before["explanation"] if "pricing_page_view" in f["factor"]]
        assert pricing == before_pricing, "the duplicate engagement was counted twice"


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
