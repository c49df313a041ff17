"""The delivery worker: sends due deliveries, logs every attempt, schedules retries.

Woken when deliveries are committed (polling is only the fallback) and when the next retry
falls due. Concurrency is bounded overall and per subscription, so one slow endpoint cannot
hold every slot. One lead's deliveries to one subscription go strictly in order, one at a
time: a delivery waits while an older one for the same lead is still pending (retrying),
as Kafka keeps one lead's events in order. Other leads and subscriptions are not held up.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter as Tally
from collections.abc import Sequence
from datetime import timedelta

import httpx
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session

from leadflow_shared.db import Database
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.observability import log_fields
from leadflow_webhooks.backoff import retry_delay
from leadflow_webhooks.fanout import DELIVERIES_QUEUED
from leadflow_webhooks.models import DeliveryAttempt, DeliveryStatus
from leadflow_webhooks.repository import ClaimedDelivery, DeliveryKey, DeliveryRepository
from leadflow_webhooks.secret_box import SecretBox
from leadflow_webhooks.sender import AttemptOutcome, Message, send_attempt

log = logging.getLogger(__name__)

ATTEMPTS = Counter("leadflow_webhook_attempts_total", "Webhook HTTP attempts", ["outcome"])
ATTEMPT_SECONDS = Histogram("leadflow_webhook_attempt_seconds", "Webhook attempt duration")
# How long a claimed delivery stays invisible to other workers beyond its timeout.
LEASE_MARGIN_S = 30.0


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        client: httpx.AsyncClient,
        secret_box: SecretBox,
        *,
        retry_schedule_s: Sequence[float],
        timeout_s: float,
        max_concurrent: int,
        max_per_subscription: int,
        poll_interval_s: float,
    ) -> None:
        self.db = db
        self.client = client
        self.secret_box = secret_box
        self.retry_schedule_s = tuple(retry_schedule_s)
        self.timeout_s = timeout_s
        self.max_concurrent = max_concurrent
        self.max_per_subscription = max_per_subscription
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._senders: set[asyncio.Task[None]] = set()
        self._busy_keys: set[DeliveryKey] = set()
        self._busy_per_subscription: Tally[str] = Tally()
        db.on_commit(self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(DELIVERIES_QUEUED, False):
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="webhook-delivery-worker")

    async def stop(self) -> None:
        """Stop taking work, let attempts in flight finish (bounded), close the client.

        An attempt cut short keeps its lease and is tried again after it expires.
        """
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._senders:
            _done, pending = await asyncio.wait(self._senders, timeout=self.timeout_s + 1)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.client.aclose()

    async def _run(self) -> None:
        while not self._stopping:
            wait_s = self.poll_interval_s
            try:
                wait_s = await self._dispatch()
            except Exception:
                log.exception("webhook dispatch failed; will retry")
            if self._stopping:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait_s)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _dispatch(self) -> float:
        """Start senders for due keys; returns how long to sleep unless woken."""
        now = utcnow()
        free = self.max_concurrent - len(self._senders)
        saturated = [
            sub for sub, n in self._busy_per_subscription.items() if n >= self.max_per_subscription
        ]
        async with self.db.transaction() as session:
            deliveries = DeliveryRepository(session)
            keys = (
                await deliveries.due_keys(
                    now, skip_subscriptions=saturated, limit=self.max_concurrent * 2 + 50
                )
                if free > 0
                else []
            )
            next_due = await deliveries.next_due_at()
        for key in keys:
            if len(self._senders) >= self.max_concurrent:
                break
            if key in self._busy_keys:
                continue
            if self._busy_per_subscription[key.subscription_id] >= self.max_per_subscription:
                continue
            self._start_sender(key)
        if next_due is None or next_due <= now:
            # Nothing scheduled, or due work waits for a free slot (a finishing sender wakes us).
            return self.poll_interval_s
        return min(self.poll_interval_s, (next_due - now).total_seconds())

    def _start_sender(self, key: DeliveryKey) -> None:
        self._busy_keys.add(key)
        self._busy_per_subscription[key.subscription_id] += 1
        task = asyncio.create_task(self._send_key(key), name="webhook-sender")
        self._senders.add(task)
        task.add_done_callback(lambda t: self._sender_done(key, t))

    def _sender_done(self, key: DeliveryKey, task: asyncio.Task[None]) -> None:
        self._senders.discard(task)
        self._busy_keys.discard(key)
        self._busy_per_subscription[key.subscription_id] -= 1
        if self._busy_per_subscription[key.subscription_id] <= 0:
            del self._busy_per_subscription[key.subscription_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook sender crashed", exc_info=task.exception())
        self._wake.set()

    async def _send_key(self, key: DeliveryKey) -> None:
        """Send the key's due deliveries one after another, oldest first."""
        while not self._stopping:
            now = utcnow()
            lease = now + timedelta(seconds=self.timeout_s + LEASE_MARGIN_S)
            async with self.db.transaction() as session:
                claimed = await DeliveryRepository(session).claim_next(key, now, lease)
            if claimed is None:
                return
            await self.attempt(claimed)

    async def attempt(self, claimed: ClaimedDelivery) -> AttemptOutcome:
        """Send one claimed delivery and record the attempt and its consequence."""
        message = Message(
            id=claimed.id,
            url=claimed.url,
            secret=self.secret_box.open(claimed.sealed_secret),
            body=claimed.body.encode(),
        )
        attempted_at = utcnow()
        outcome = await send_attempt(self.client, message, self.timeout_s)
        run_attempts = claimed.run_attempts + 1
        if outcome.succeeded:
            status, next_at = DeliveryStatus.SUCCEEDED, None
        elif outcome.blocked:
            status, next_at = DeliveryStatus.FAILED, None
        else:
            delay = retry_delay(run_attempts, self.retry_schedule_s)
            if delay is None:
                status, next_at = DeliveryStatus.FAILED, None
            else:
                status, next_at = DeliveryStatus.PENDING, utcnow() + timedelta(seconds=delay)
        async with self.db.transaction() as session:
            await DeliveryRepository(session).record_attempt(
                DeliveryAttempt(
                    id=new_id(),
                    delivery_id=claimed.id,
                    attempted_at=attempted_at,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    duration_ms=outcome.duration_ms,
                ),
                run_attempts=run_attempts,
                new_status=status.value,
                next_attempt_at=next_at,
            )
        label = "success" if outcome.succeeded else "blocked" if outcome.blocked else "failure"
        ATTEMPTS.labels(label).inc()
        ATTEMPT_SECONDS.observe(outcome.duration_ms / 1000)
        log.info(
            "webhook attempt",
            extra=log_fields(
                delivery_id=claimed.id,
                outcome=label,
                status_code=outcome.status_code,
                attempt=run_attempts,
                delivery_status=status.value,
                duration_ms=outcome.duration_ms,
            ),
        )
        return outcome
