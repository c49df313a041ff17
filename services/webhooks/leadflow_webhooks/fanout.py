"""Turning one consumed event into one delivery per subscription that wants it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.events import CloudEvent
from leadflow_shared.ids import new_id, utcnow
from leadflow_webhooks.event_filter import subscribes_to
from leadflow_webhooks.models import Delivery, DeliveryStatus
from leadflow_webhooks.repository import DeliveryRepository, SubscriptionRepository

# Set on the session when deliveries were queued; the worker is woken after the commit.
DELIVERIES_QUEUED = "leadflow.webhooks.deliveries_queued"


def webhook_body(event: CloudEvent) -> str:
    """The Standard Webhooks body: ``{"type", "timestamp", "data"}``, compact JSON."""
    payload: dict[str, Any] = {
        "type": event.type,
        "timestamp": event.time.isoformat(),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


async def queue_deliveries(session: AsyncSession, event: CloudEvent, lead_id: str) -> int:
    """Queue ``event`` for every active subscription whose event types match it."""
    return await queue_many(session, [(event, lead_id)])


async def queue_many(session: AsyncSession, events: Sequence[tuple[CloudEvent, str]]) -> int:
    """Queue each ``(event, lead_id)`` for the active subscriptions that want it: one read
    of the subscriptions and one multi-row insert for the whole run."""
    active = await SubscriptionRepository(session).active()
    if not active or not events:
        return 0
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for event, lead_id in events:
        wanting = [s for s in active if subscribes_to(s.event_types, event.type)]
        if not wanting:
            continue
        body = webhook_body(event)
        rows.extend(
            {
                "id": new_id(),
                "subscription_id": subscription.id,
                "event_id": event.id,
                "event_type": event.type,
                "lead_id": lead_id,
                "body": body,
                "status": DeliveryStatus.PENDING.value,
                "attempts": 0,
                "run_attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for subscription in wanting
        )
    if rows:
        await session.execute(insert(Delivery), rows)
        session.info[DELIVERIES_QUEUED] = True
    return len(rows)


async def erase_lead_payloads(session: AsyncSession, lead_id: str) -> None:
    """GDPR erasure: drop every stored body about the lead; undelivered ones are cancelled
    (their personal data must not leave after erasure). Ids, types and the attempt log
    (status codes, errors, timings) carry no personal data and stay."""
    now = utcnow()
    deliveries = DeliveryRepository(session)
    await deliveries.cancel_pending(now=now, reason="lead erased", lead_id=lead_id)
    await deliveries.erase_bodies_of_lead(lead_id, now)
