"""Which event types any active subscription wants, cached so that the consumer skips the
rest without opening a transaction.

The cache answers "wanted" whenever it does not know better: before its first load, right
after a subscription changed in this process (until reloaded), and when its last load is
older than ``max_age_s`` (a replica's change is seen within about a second). Erasures are
always wanted: stored bodies must be erased whatever the subscriptions are.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from leadflow_shared.db import Database
from leadflow_shared.events import LeadErased
from leadflow_shared.periodic import PeriodicTask
from leadflow_webhooks.event_filter import subscribes_to
from leadflow_webhooks.models import Subscription

# Set on a session whose transaction creates, changes or deactivates a subscription.
SUBSCRIPTIONS_CHANGED = "leadflow.webhooks.subscriptions_changed"


class SubscribedTypes:
    def __init__(self, *, refresh_s: float = 1.0, max_age_s: float = 3.0) -> None:
        self.refresh_s = refresh_s
        self.max_age_s = max_age_s
        self._patterns: frozenset[str] | None = None
        self._loaded_at = 0.0
        self._answers: dict[str, bool] = {}
        self._generation = 0  # bumped by every invalidation
        self._db: Database | None = None
        self._task: PeriodicTask | None = None

    def wants(self, event_type: str) -> bool:
        if event_type == LeadErased.event_type:
            return True
        if self._patterns is None or time.monotonic() - self._loaded_at > self.max_age_s:
            return True
        answer = self._answers.get(event_type)
        if answer is None:
            answer = self._answers[event_type] = subscribes_to(self._patterns, event_type)
        return answer

    def invalidate(self) -> None:
        self._generation += 1
        self._patterns = None
        self._answers = {}

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(SUBSCRIPTIONS_CHANGED, False):
            self.invalidate()

    async def reload(self) -> None:
        assert self._db is not None
        loaded_at, generation = time.monotonic(), self._generation
        async with self._db.read() as session:
            lists = await session.scalars(
                select(Subscription.event_types).where(Subscription.active.is_(True))
            )
            patterns = frozenset(p for event_types in lists for p in event_types)
        if generation == self._generation:  # else a change committed meanwhile: load again
            self._patterns, self._answers, self._loaded_at = patterns, {}, loaded_at

    async def start(self, db: Database) -> None:
        self._db = db
        self.invalidate()
        db.on_commit(self._after_commit)
        await self.reload()
        self._task = PeriodicTask("webhooks-subscribed-types", self.refresh_s, self.reload)
        self._task.start()

    async def stop(self) -> None:
        if self._task is not None:
            await self._task.stop()
            self._task = None
        self.invalidate()


subscribed_types = SubscribedTypes()
