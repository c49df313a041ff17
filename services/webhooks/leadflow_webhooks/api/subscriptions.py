"""Registering, listing and deactivating webhook subscriptions."""

from __future__ import annotations

from fastapi import APIRouter, Response

from leadflow_shared.errors import InvalidInput, problem_responses
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import Runtime, SessionDep
from leadflow_webhooks.access import IdPath, Integrator, owned_subscription, owner_filter
from leadflow_webhooks.lifecycle import secret_box_of, settings_of, target_policy
from leadflow_webhooks.models import Subscription
from leadflow_webhooks.repository import DeliveryRepository, SubscriptionRepository
from leadflow_webhooks.schemas import SubscriptionCreated, SubscriptionIn, SubscriptionOut
from leadflow_webhooks.signing import new_secret
from leadflow_webhooks.subscribed_types import SUBSCRIPTIONS_CHANGED
from leadflow_webhooks.target_policy import url_problem

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def subscription_out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.id,
        url=subscription.url,
        event_types=subscription.event_types,
        description=subscription.description,
        active=subscription.active,
        owner=subscription.owner,
        created_at=subscription.created_at,
    )


@router.post("", status_code=201, response_model=SubscriptionCreated)
async def register_webhook(
    body: SubscriptionIn, session: SessionDep, runtime: Runtime, principal: Integrator
) -> SubscriptionCreated:
    """Subscribe ``url`` to ``event_types``; the response is the only one showing the secret."""
    problem = url_problem(body.url, target_policy(settings_of(runtime)))
    if problem is not None:
        raise InvalidInput.field("url", problem)
    secret = new_secret()
    subscription = Subscription(
        id=new_id(),
        owner=principal.sub,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        secret=secret_box_of(runtime).seal(secret),
        active=True,
        created_at=utcnow(),
    )
    SubscriptionRepository(session).add(subscription)
    session.info[SUBSCRIPTIONS_CHANGED] = True
    return SubscriptionCreated(**subscription_out(subscription).model_dump(), secret=secret)


@router.get("", response_model=list[SubscriptionOut])
async def list_webhooks(
    session: SessionDep, principal: Integrator, include_inactive: bool = False
) -> list[SubscriptionOut]:
    subscriptions = await SubscriptionRepository(session).list(
        owner_filter(principal), include_inactive=include_inactive
    )
    return [subscription_out(s) for s in subscriptions]


@router.get("/{subscription_id}", response_model=SubscriptionOut, responses=problem_responses(404))
async def get_webhook(
    subscription_id: IdPath, session: SessionDep, principal: Integrator
) -> SubscriptionOut:
    return subscription_out(await owned_subscription(session, subscription_id, principal))


@router.delete("/{subscription_id}", status_code=204, responses=problem_responses(404))
async def deactivate_webhook(
    subscription_id: IdPath, session: SessionDep, principal: Integrator
) -> Response:
    """Stop delivering to this subscription; its pending deliveries are cancelled."""
    subscription = await owned_subscription(session, subscription_id, principal)
    if subscription.active:
        now = utcnow()
        subscription.active = False
        subscription.deactivated_at = now
        session.info[SUBSCRIPTIONS_CHANGED] = True
        await DeliveryRepository(session).cancel_pending(
            now=now, reason="subscription deactivated", subscription_id=subscription.id
        )
    return Response(status_code=204)
