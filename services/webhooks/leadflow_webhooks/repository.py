"""Every query the webhooks service makes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from leadflow_webhooks.models import Delivery, DeliveryAttempt, DeliveryStatus, Subscription

PENDING = DeliveryStatus.PENDING.value


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


def _not_behind_an_older_pending() -> ColumnElement[bool]:
    """No older pending delivery of the same subscription and lead (ids sort by time)."""
    older = aliased(Delivery)
    return ~exists().where(
        older.subscription_id == Delivery.subscription_id,
        older.lead_id == Delivery.lead_id,
        older.status == PENDING,
        older.id < Delivery.id,
    )


@dataclass(frozen=True)
class DeliveryKey:
    """Deliveries of one subscription about one lead are sent one at a time, oldest first."""

    subscription_id: str
    lead_id: str


@dataclass(frozen=True)
class ClaimedDelivery:
    id: str
    url: str
    # As stored: encrypted (leadflow_webhooks.secret_box); the worker decrypts it to sign.
    sealed_secret: str
    body: str
    run_attempts: int


class SubscriptionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, subscription: Subscription) -> None:
        self.session.add(subscription)

    async def get(self, subscription_id: str) -> Subscription | None:
        return await self.session.get(Subscription, subscription_id)

    async def list(self, owner: str | None, *, include_inactive: bool) -> Sequence[Subscription]:
        query = select(Subscription).order_by(Subscription.created_at, Subscription.id)
        if owner is not None:
            query = query.where(Subscription.owner == owner)
        if not include_inactive:
            query = query.where(Subscription.active.is_(True))
        return (await self.session.scalars(query)).all()

    async def active(self) -> Sequence[Subscription]:
        return (
            await self.session.scalars(select(Subscription).where(Subscription.active.is_(True)))
        ).all()


class DeliveryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, delivery_id: str) -> Delivery | None:
        return await self.session.get(Delivery, delivery_id)

    async def for_subscription(
        self, subscription_id: str, *, status: str | None, limit: int
    ) -> Sequence[Delivery]:
        query = (
            select(Delivery)
            .where(Delivery.subscription_id == subscription_id)
            .order_by(Delivery.id.desc())
            .limit(limit)
        )
        if status is not None:
            query = query.where(Delivery.status == status)
        return (await self.session.scalars(query)).all()

    async def attempts_of(self, delivery_id: str) -> Sequence[DeliveryAttempt]:
        return (
            await self.session.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == delivery_id)
                .order_by(DeliveryAttempt.attempted_at, DeliveryAttempt.id)
            )
        ).all()

    async def cancel_pending(
        self,
        *,
        now: datetime,
        reason: str,
        subscription_id: str | None = None,
        lead_id: str | None = None,
    ) -> int:
        conditions = [Delivery.status == PENDING]
        if subscription_id is not None:
            conditions.append(Delivery.subscription_id == subscription_id)
        if lead_id is not None:
            conditions.append(Delivery.lead_id == lead_id)
        result = await self.session.execute(
            update(Delivery)
            .where(and_(*conditions))
            .values(status=DeliveryStatus.CANCELLED.value, next_attempt_at=None, last_error=reason)
        )
        return _rowcount(result)

    async def erase_bodies_of_lead(self, lead_id: str, now: datetime) -> int:
        result = await self.session.execute(
            update(Delivery)
            .where(Delivery.lead_id == lead_id, Delivery.body.is_not(None))
            .values(body=None, payload_erased_at=now)
        )
        return _rowcount(result)

    # --- the delivery worker -------------------------------------------------------------

    def _due(self, now: datetime) -> list[Any]:
        """Due, and not behind an older pending delivery of the same subscription and lead
        (one lead's events reach one subscriber in order)."""
        return [
            Delivery.status == PENDING,
            Delivery.next_attempt_at <= now,
            Delivery.body.is_not(None),
            Subscription.active.is_(True),
            _not_behind_an_older_pending(),
        ]

    async def due_keys(
        self, now: datetime, *, skip_subscriptions: Sequence[str], limit: int
    ) -> list[DeliveryKey]:
        """Keys with a due delivery, the longest-waiting first."""
        query = (
            select(Delivery.subscription_id, Delivery.lead_id)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(*self._due(now))
            .group_by(Delivery.subscription_id, Delivery.lead_id)
            .order_by(func.min(Delivery.next_attempt_at), func.min(Delivery.id))
            .limit(limit)
        )
        if skip_subscriptions:
            query = query.where(Delivery.subscription_id.not_in(list(skip_subscriptions)))
        rows = (await self.session.execute(query)).all()
        return [DeliveryKey(row.subscription_id, row.lead_id) for row in rows]

    async def next_due_at(self) -> datetime | None:
        """When the next delivery that is not behind an older one falls due."""
        return await self.session.scalar(
            select(func.min(Delivery.next_attempt_at)).where(
                Delivery.status == PENDING, _not_behind_an_older_pending()
            )
        )

    async def claim_next(
        self, key: DeliveryKey, now: datetime, lease_until: datetime
    ) -> ClaimedDelivery | None:
        """Take the key's oldest due delivery by moving its due time to ``lease_until``.

        The conditional update makes the claim exclusive across replicas; a worker that dies
        mid-attempt leaves the lease to expire, and the delivery is tried again.
        """
        row = (
            await self.session.execute(
                select(Delivery, Subscription.url, Subscription.secret)
                .join(Subscription, Subscription.id == Delivery.subscription_id)
                .where(
                    Delivery.subscription_id == key.subscription_id,
                    Delivery.lead_id == key.lead_id,
                    *self._due(now),
                )
                .order_by(Delivery.id)
                .limit(1)
            )
        ).first()
        if row is None:
            return None
        delivery: Delivery = row[0]
        claimed = await self.session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery.id,
                Delivery.status == PENDING,
                Delivery.next_attempt_at == delivery.next_attempt_at,
            )
            .values(next_attempt_at=lease_until)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(claimed) != 1 or delivery.body is None:
            return None
        return ClaimedDelivery(
            id=delivery.id,
            url=row[1],
            sealed_secret=row[2],
            body=delivery.body,
            run_attempts=delivery.run_attempts,
        )

    async def record_attempt(
        self,
        attempt: DeliveryAttempt,
        *,
        run_attempts: int,
        new_status: str,
        next_attempt_at: datetime | None,
    ) -> None:
        """Log the attempt and move the delivery on, unless it was cancelled meanwhile."""
        self.session.add(attempt)
        await self.session.execute(
            update(Delivery)
            .where(Delivery.id == attempt.delivery_id)
            .values(
                attempts=Delivery.attempts + 1,
                last_attempt_at=attempt.attempted_at,
                last_status_code=attempt.status_code,
                last_error=attempt.error,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(
            update(Delivery)
            .where(Delivery.id == attempt.delivery_id, Delivery.status == PENDING)
            .values(status=new_status, run_attempts=run_attempts, next_attempt_at=next_attempt_at)
            .execution_options(synchronize_session=False)
        )
