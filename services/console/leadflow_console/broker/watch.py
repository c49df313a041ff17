"""The broker view's lifecycle (on_start/on_stop hooks) and the topics report."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from leadflow_console.broker.lag import Committed, Offsets, build_topics_report
from leadflow_console.broker.probe import OffsetsProbe
from leadflow_console.broker.sampler import EndOffsetSampler
from leadflow_console.errors import BrokerDisabled, BrokerUnavailable
from leadflow_console.schemas import TopicsReport
from leadflow_console.settings import ConsoleSettings
from leadflow_shared.events import TOPICS
from leadflow_shared.ids import utcnow
from leadflow_shared.observability import log_fields
from leadflow_shared.service import ServiceRuntime

log = logging.getLogger(__name__)

STATE_KEY = "broker_watch"


@dataclass
class BrokerWatch:
    probe: OffsetsProbe
    sampler: EndOffsetSampler
    topics: list[str]
    dead_letter_topics: list[str]
    window_s: float

    async def report(self) -> TopicsReport:
        """Live end and committed offsets, all within one broker timeout."""
        ends, committed = await self.probe.bounded(self._read_offsets(), "building the report")
        return build_topics_report(
            topics=self.topics,
            dead_letter_topics=self.dead_letter_topics,
            ends=ends,
            committed=committed,
            history=list(self.sampler.history),
            window_s=self.window_s,
            sampled_at=utcnow(),
        )

    async def _read_offsets(self) -> tuple[Offsets, Committed]:
        ends = await self.probe.end_offsets(self.topics)
        committed = await self.probe.committed(
            {topic: sorted(partitions) for topic, partitions in ends.items()}
        )
        return ends, committed


def new_broker_watch(settings: ConsoleSettings) -> BrokerWatch:
    dead_letter_topics = [f"{service}.dlq" for service in settings.dlq_services]
    topics = [*TOPICS, *dead_letter_topics]
    probe = OffsetsProbe(
        settings.kafka_bootstrap_servers, settings.consumer_groups, settings.broker_timeout_s
    )
    sampler = EndOffsetSampler(
        probe, topics, interval_s=settings.sample_interval_s, window_s=settings.rate_window_s
    )
    return BrokerWatch(probe, sampler, topics, dead_letter_topics, settings.rate_window_s)


def _settings(runtime: ServiceRuntime) -> ConsoleSettings:
    settings = runtime.settings
    assert isinstance(settings, ConsoleSettings)
    return settings


async def start_broker_watch(runtime: ServiceRuntime) -> None:
    """on_start: open the offset clients and start sampling (only with Kafka enabled)."""
    settings = _settings(runtime)
    if not settings.kafka_enabled:
        return
    watch = new_broker_watch(settings)
    try:
        await watch.probe.start()
    except BrokerUnavailable as exc:
        # Not fatal: the sampler and each request retry the connection.
        log.warning("offset clients not connected yet", extra=log_fields(detail=exc.detail))
    watch.sampler.start()
    runtime.state[STATE_KEY] = watch


async def stop_broker_watch(runtime: ServiceRuntime) -> None:
    """on_stop: stop sampling and close the offset clients."""
    watch: BrokerWatch | None = runtime.state.pop(STATE_KEY, None)
    if watch is not None:
        await watch.sampler.stop()
        await watch.probe.stop()


def broker_watch(runtime: ServiceRuntime) -> BrokerWatch:
    watch: BrokerWatch | None = runtime.state.get(STATE_KEY)
    if watch is None:
        if not runtime.settings.kafka_enabled:
            raise BrokerDisabled(
                "the broker view is off (LEADFLOW_KAFKA_ENABLED=false); topics, lag and "
                "dead letters need a broker"
            )
        raise BrokerUnavailable("the broker view is starting; retry in a moment")
    return watch
