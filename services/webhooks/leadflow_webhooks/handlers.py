"""webhooks consumes every event type and queues it for the subscriptions that want it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.events import EVENT_MODELS, CloudEvent, EventData, LeadErased
from leadflow_shared.messaging import HandlerRegistry
from leadflow_webhooks.fanout import erase_lead_payloads, queue_deliveries

handlers = HandlerRegistry()


async def forward_event(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
    await queue_deliveries(session, event, data.lead_id)


async def erase_then_forward(session: AsyncSession, event: CloudEvent, data: LeadErased) -> None:
    """Erase what we hold about the lead, then tell subscribers it was erased."""
    await erase_lead_payloads(session, data.lead_id)
    await queue_deliveries(session, event, data.lead_id)


for _model in EVENT_MODELS.values():
    handlers.on(_model)(forward_event)
handlers.on(LeadErased)(erase_then_forward)
