"""webhooks consumes every event type and queues it for the subscriptions that want it.

Event types no active subscription wants are skipped by the consumer before any
transaction (see ``subscribed_types``); the rest are fanned out a run at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.events import EVENT_MODELS, CloudEvent, EventData, LeadErased
from leadflow_shared.messaging import HandlerRegistry
from leadflow_webhooks.fanout import erase_lead_payloads, queue_deliveries, queue_many
from leadflow_webhooks.subscribed_types import subscribed_types

handlers = HandlerRegistry(wants=subscribed_types.wants)


async def forward_events(
    session: AsyncSession, items: Sequence[tuple[CloudEvent, EventData]]
) -> None:
    await queue_many(session, [(event, data.lead_id) for event, data in items])


async def erase_then_forward(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """Erase what we hold about the lead, then tell subscribers it was erased."""
    await erase_lead_payloads(session, data.lead_id)
    await queue_deliveries(session, event, data.lead_id)


for _model in EVENT_MODELS.values():
    handlers.on_batch(_model)(forward_events)
handlers.on(LeadErased)(erase_then_forward)
