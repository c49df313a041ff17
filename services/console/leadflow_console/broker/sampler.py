"""Background sampler: end offsets every few seconds, a short history for the rates."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Sequence

from leadflow_console.broker.lag import OffsetsSample
from leadflow_console.broker.probe import OffsetsProbe
from leadflow_console.errors import BrokerUnavailable
from leadflow_shared.observability import log_fields
from leadflow_shared.periodic import PeriodicTask

log = logging.getLogger(__name__)


class EndOffsetSampler:
    def __init__(
        self, probe: OffsetsProbe, topics: Sequence[str], interval_s: float, window_s: float
    ) -> None:
        self.probe = probe
        self.topics = list(topics)
        self.interval_s = interval_s
        # Enough samples to span the rate window, plus the newest and one spare.
        self.history: deque[OffsetsSample] = deque(
            maxlen=max(2, math.ceil(window_s / interval_s) + 2)
        )
        self._failing = False
        self._periodic = PeriodicTask("console-offsets-sampler", interval_s, self._sample_logged)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def sample_once(self) -> None:
        ends = await self.probe.end_offsets(self.topics)
        self.history.append(OffsetsSample(taken_at=time.monotonic(), ends=ends))

    async def _sample_logged(self) -> None:
        try:
            await self.sample_once()
            if self._failing:
                log.info("offsets sampling recovered")
            self._failing = False
        except BrokerUnavailable as exc:
            if not self._failing:  # log the change, not every tick
                log.warning("offsets sampling failing", extra=log_fields(detail=exc.detail))
            self._failing = True
