"""Long-lived aiokafka clients that read end offsets and committed offsets.

One plain consumer (no group) reads metadata and end offsets; one consumer per group id
reads that group's committed offsets. None of them subscribes, so none joins its group
or disturbs the services' consumers. (The admin client's ``list_consumer_group_offsets``
does not decode against the local Tansu broker, hence ``committed()``.) Every call is
bounded by ``timeout_s`` and fails as :class:`BrokerUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from leadflow_console.errors import BrokerUnavailable
from leadflow_shared.messaging.offsets import high_watermarks
from leadflow_shared.observability import log_fields

log = logging.getLogger(__name__)

T = TypeVar("T")


class OffsetsProbe:
    def __init__(self, bootstrap_servers: str, groups: Sequence[str], timeout_s: float) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.groups = list(groups)
        self.timeout_s = timeout_s
        self._offsets: Any = None
        self._group_clients: dict[str, Any] = {}
        self._lock = asyncio.Lock()

    @property
    def started(self) -> bool:
        return self._offsets is not None

    def _consumer(self, group_id: str | None) -> Any:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            group_id=group_id,
            client_id=f"console-offsets-{group_id or 'ends'}",
            enable_auto_commit=False,
        )

    async def start(self) -> None:
        """Connect every client (idempotent; safe to call before each use)."""
        if self.started:
            return
        async with self._lock:
            if self.started:
                return
            offsets = self._consumer(None)
            groups = {g: self._consumer(g) for g in self.groups}
            clients = [offsets, *groups.values()]
            try:
                await self.bounded(asyncio.gather(*(c.start() for c in clients)), "connecting")
            except BaseException:  # also a cancelled request: never leak half-open clients
                await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
                raise
            self._group_clients = groups
            self._offsets = offsets

    async def stop(self) -> None:
        async with self._lock:
            clients = [c for c in (self._offsets, *self._group_clients.values()) if c]
            self._offsets, self._group_clients = None, {}
        results = await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.warning(
                    "offsets client did not close cleanly",
                    extra=log_fields(error_type=type(result).__name__),
                )

    async def end_offsets(self, topics: Sequence[str]) -> dict[str, dict[int, int]]:
        """End offset per partition of each topic that exists (missing topics are absent)."""
        await self.start()
        return await self.bounded(self._end_offsets(topics), "reading end offsets")

    async def _end_offsets(self, topics: Sequence[str]) -> dict[str, dict[int, int]]:
        consumer = self._offsets
        existing = set(await consumer.topics()) & set(topics)
        if any(consumer.partitions_for_topic(t) is None for t in existing):
            # Created since the client's last metadata refresh: refresh now.
            await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(t, p)
            for t in sorted(existing)
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        ends: dict[str, dict[int, int]] = {}
        if partitions:
            # Not ListOffsets alone: the local broker's answer is short after batched
            # produces (leadflow_shared.messaging.offsets).
            for tp, end in (await high_watermarks(self.bootstrap_servers, partitions)).items():
                ends.setdefault(tp.topic, {})[tp.partition] = end
        return ends

    async def committed(
        self, partitions: Mapping[str, Sequence[int]]
    ) -> dict[str, dict[str, dict[int, int | None]]]:
        """Each group's committed offset (None: never committed) for the given partitions."""
        await self.start()
        tps = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]

        async def of_group(group: str) -> dict[str, dict[int, int | None]]:
            client = self._group_clients[group]
            offsets = await asyncio.gather(*(client.committed(tp) for tp in tps))
            out: dict[str, dict[int, int | None]] = {}
            for tp, offset in zip(tps, offsets, strict=True):
                out.setdefault(tp.topic, {})[tp.partition] = offset
            return out

        results = await self.bounded(
            asyncio.gather(*(of_group(g) for g in self.groups)), "reading committed offsets"
        )
        return dict(zip(self.groups, results, strict=True))

    async def bounded(self, call: Awaitable[T], what: str) -> T:
        """Await ``call`` within ``timeout_s``; broker trouble becomes BrokerUnavailable."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await call
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"broker {self.bootstrap_servers} did not answer {what} within "
                f"{self.timeout_s:g}s; check that it is running (KAFKA_BOOTSTRAP_SERVERS)"
            ) from exc
        except (KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"broker {self.bootstrap_servers} failed {what}: {type(exc).__name__}: {exc}; "
                "check that it is running (KAFKA_BOOTSTRAP_SERVERS)"
            ) from exc
