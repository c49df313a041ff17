"""The delivery log of a subscription, and manual retries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.errors import Conflict, NotFound, problem_responses
from leadflow_shared.ids import utcnow
from leadflow_shared.service import SessionDep
from leadflow_webhooks.access import IdPath, Integrator, owned_subscription
from leadflow_webhooks.fanout import DELIVERIES_QUEUED
from leadflow_webhooks.models import Delivery, DeliveryStatus
from leadflow_webhooks.repository import DeliveryRepository
from leadflow_webhooks.schemas import AttemptOut, DeliveryDetail, DeliveryOut

router = APIRouter(prefix="/v1/webhooks/{subscription_id}/deliveries", tags=["deliveries"])


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        lead_id=delivery.lead_id,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_attempt_at=delivery.last_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        created_at=delivery.created_at,
        payload_erased=delivery.body is None,
    )


async def _delivery(session: AsyncSession, subscription_id: str, delivery_id: str) -> Delivery:
    delivery = await DeliveryRepository(session).get(delivery_id)
    if delivery is None or delivery.subscription_id != subscription_id:
        raise NotFound(f"no delivery {delivery_id} for webhook {subscription_id}")
    return delivery


@router.get("", response_model=list[DeliveryOut], responses=problem_responses(404))
async def list_deliveries(
    subscription_id: IdPath,
    session: SessionDep,
    principal: Integrator,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """Newest first."""
    await owned_subscription(session, subscription_id, principal)
    deliveries = await DeliveryRepository(session).for_subscription(
        subscription_id, status=status.value if status else None, limit=limit
    )
    return [delivery_out(d) for d in deliveries]


@router.get("/{delivery_id}", response_model=DeliveryDetail, responses=problem_responses(404))
async def get_delivery(
    subscription_id: IdPath, delivery_id: IdPath, session: SessionDep, principal: Integrator
) -> DeliveryDetail:
    """One delivery with its attempt log."""
    await owned_subscription(session, subscription_id, principal)
    delivery = await _delivery(session, subscription_id, delivery_id)
    attempts = await DeliveryRepository(session).attempts_of(delivery.id)
    return DeliveryDetail(
        **delivery_out(delivery).model_dump(),
        attempt_log=[
            AttemptOut(
                attempted_at=a.attempted_at,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
            for a in attempts
        ],
    )


@router.post(
    "/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    responses=problem_responses(
        404, 409, s409="still pending, subscription deactivated, or payload erased"
    ),
)
async def retry_delivery(
    subscription_id: IdPath, delivery_id: IdPath, session: SessionDep, principal: Integrator
) -> DeliveryOut:
    """Queue a finished delivery again, now, with a fresh retry schedule."""
    subscription = await owned_subscription(session, subscription_id, principal)
    delivery = await _delivery(session, subscription_id, delivery_id)
    if delivery.status == DeliveryStatus.PENDING:
        raise Conflict("this delivery is still pending; it will be attempted on schedule")
    if not subscription.active:
        raise Conflict("this webhook subscription is deactivated; register it again")
    if delivery.body is None:
        raise Conflict("this delivery's payload was erased with its lead; it cannot be resent")
    delivery.status = DeliveryStatus.PENDING.value
    delivery.run_attempts = 0
    delivery.next_attempt_at = utcnow()
    session.info[DELIVERIES_QUEUED] = True
    return delivery_out(delivery)
