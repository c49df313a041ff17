"""Who may manage which subscription: integration clients their own, admins all."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_shared.auth import Principal, require_roles
from leadflow_shared.errors import Forbidden, NotFound
from leadflow_webhooks.models import Subscription
from leadflow_webhooks.repository import SubscriptionRepository

Integrator = Annotated[Principal, Depends(require_roles("integration"))]
# Ids are UUIDs; anything else is a 422 before it reaches the database.
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]


def owner_filter(principal: Principal) -> str | None:
    """The owner to restrict listings to; None (everything) for admins."""
    return None if principal.role == "admin" else principal.sub


async def owned_subscription(
    session: AsyncSession, subscription_id: str, principal: Principal
) -> Subscription:
    subscription = await SubscriptionRepository(session).get(subscription_id)
    if subscription is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    if principal.role != "admin" and subscription.owner != principal.sub:
        raise Forbidden("this webhook subscription belongs to another client")
    return subscription
