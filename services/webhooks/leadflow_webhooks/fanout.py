"""Turning one consumed event into one delivery per subscription that wants it."""

from __future__ import annotations

import json
from typing import Any

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
    subscriptions = [
        s
        for s in await SubscriptionRepository(session).active()
        if subscribes_to(s.event_types, event.type)
    ]
    if not subscriptions:
        return 0
    now = utcnow()
    body = webhook_body(event)
    deliveries = DeliveryRepository(session)
    for subscription in subscriptions:
        deliveries.add(
            Delivery(
                id=new_id(),
                subscription_id=subscription.id,
                event_id=event.id,
                event_type=event.type,
                lead_id=lead_id,
                body=body,
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                run_attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    session.info[DELIVERIES_QUEUED] = True
    return len(subscriptions)


async def erase_lead_payloads(session: AsyncSession, lead_id: str) -> None:
    """GDPR erasure: drop every stored body about the lead; undelivered ones are cancelled
    (their personal data must not leave after erasure). Ids, types and the attempt log
    (status codes, errors, timings) carry no personal data and stay."""
    now = utcnow()
    deliveries = DeliveryRepository(session)
    await deliveries.cancel_pending(now=now, reason="lead erased", lead_id=lead_id)
    await deliveries.erase_bodies_of_lead(lead_id, now)
