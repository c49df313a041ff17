"""A background task that runs a coroutine every few seconds until the service stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from leadflow_shared.observability import log_fields

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs ``tick`` now and then every ``interval_s``; a failing tick is logged (sparingly
    while it keeps failing) and the next one runs on schedule. ``stop`` lets the tick in
    progress finish."""

    def __init__(self, name: str, interval_s: float, tick: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval_s = interval_s
        self._tick = tick
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                await self._tick()
                if failures:
                    log.info("periodic task recovered", extra=log_fields(task=self.name))
                failures = 0
            except Exception as exc:
                failures += 1
                # The traceback once per run of failures (an outage would repeat it every
                # tick), then a line every 30 ticks.
                if failures == 1:
                    log.exception(
                        "periodic task failed; retrying", extra=log_fields(task=self.name)
                    )
                elif failures % 30 == 0:
                    log.warning(
                        "periodic task still failing",
                        extra=log_fields(
                            task=self.name, failures=failures, error_type=type(exc).__name__
                        ),
                    )
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass
