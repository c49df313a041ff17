"""What every benchmark phase shares: percentiles, the process monitor (psutil), the
``leads.routing`` watcher and ledger, PostgreSQL databases per run, metrics scraping."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition

PG_ADMIN = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


# --- statistics ---------------------------------------------------------------------------


def percentiles(samples_ms: list[float], missing: int = 0) -> dict[str, Any]:
    """p50/p95/p99/max/mean of ``samples_ms``; ``missing`` samples count as infinitely slow
    (a lead never assigned within the wait), so a percentile they reach is ``None``."""
    n = len(samples_ms) + missing
    if n == 0:
        return {"n": 0}
    ordered = sorted(samples_ms) + [math.inf] * missing

    def q(p: float) -> float | None:
        # nearest-rank percentile
        value = ordered[max(0, math.ceil(p / 100 * n) - 1)]
        return None if math.isinf(value) else round(value, 2)

    return {
        "n": n,
        "missing": missing,
        "p50": q(50),
        "p95": q(95),
        "p99": q(99),
        "max": q(100),
        "mean": round(statistics.fmean(samples_ms), 2) if samples_ms and not missing else None,
    }


def ratio(measured: float | None, baseline: float | None, digits: int = 2) -> float | None:
    if measured is None or baseline is None or baseline == 0:
        return None
    return round(measured / baseline, digits)


# --- processes: CPU seconds and peak RSS per phase ------------------------------------------


@dataclass
class _Tracked:
    name: str
    process: psutil.Process
    peak_rss: int = 0
    cpu_at_mark: float = 0.0


@dataclass
class Monitor:
    """Samples the RSS of every tracked process (broker, services, replicas, the bench
    itself) every ``interval_s``; ``phase()`` records CPU seconds and peak RSS per process."""

    interval_s: float = 0.25
    _tracked: dict[str, _Tracked] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def track(self, name: str, pid: int) -> None:
        with self._lock:
            try:
                self._tracked[name] = _Tracked(name, psutil.Process(pid))
            except psutil.Error:
                pass

    def untrack(self, name: str) -> None:
        with self._lock:
            self._tracked.pop(name, None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bench-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                for t in self._tracked.values():
                    with contextlib.suppress(psutil.Error):
                        t.peak_rss = max(t.peak_rss, t.process.memory_info().rss)

    def _cpu(self, t: _Tracked) -> float | None:
        try:
            times = t.process.cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[dict[str, Any]]:
        """Measure one phase; the yielded dict is filled in when the phase ends."""
        out: dict[str, Any] = {}
        with self._lock:
            starts = {k: self._cpu(t) for k, t in self._tracked.items()}
            for t in self._tracked.values():
                with contextlib.suppress(psutil.Error):
                    t.peak_rss = t.process.memory_info().rss
        began = time.perf_counter()
        try:
            yield out
        finally:
            elapsed = time.perf_counter() - began
            per: dict[str, Any] = {}
            with self._lock:
                for k, t in self._tracked.items():
                    end = self._cpu(t)
                    start = starts.get(k)
                    if start is None:  # started during the phase (a replica)
                        start = 0.0
                    per[k] = {
                        "cpu_s": round(end - start, 3) if end is not None else None,
                        "peak_rss_mb": round(t.peak_rss / 2**20, 1),
                    }
            system_cpu = sum(
                v["cpu_s"] or 0.0 for k, v in per.items() if k != "bench (load generator)"
            )
            out.update(
                {
                    "seconds": round(elapsed, 3),
                    "processes": per,
                    "system_cpu_s": round(system_cpu, 3),
                    "system_cores_used": round(system_cpu / elapsed, 3) if elapsed else None,
                }
            )
            self.phases[name] = out


# --- PostgreSQL: a fresh database per run, dropped afterwards -------------------------------


async def pg_execute(statements: list[str], dsn: str = PG_ADMIN, timeout_s: float = 30) -> None:
    conn = await asyncpg.connect(dsn, timeout=timeout_s)
    try:
        for statement in statements:
            await conn.execute(statement, timeout=timeout_s)
    finally:
        await conn.close()


async def pg_available(dsn: str = PG_ADMIN) -> str | None:
    """None when PostgreSQL answers; otherwise why not."""
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def pg_url(database: str, driver: str = "postgresql+asyncpg") -> str:
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", f"{driver}://")
    return f"{base}/{database}"


def new_database_name(purpose: str) -> str:
    return f"leadflow_bench_{secrets.token_hex(3)}_{purpose}"


# --- Prometheus metrics of the services -----------------------------------------------------


def parse_metric(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """``name{labels} value`` lines as {sorted label pairs: value}."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        rest = line[len(name) :]
        if rest.startswith("{"):
            labels_text, _, value = rest[1:].partition("} ")
            labels = []
            for part in labels_text.split('",'):
                key, _, val = part.partition('="')
                labels.append((key.strip(","), val.rstrip('"')))
            key_t = tuple(sorted(labels))
        elif rest.startswith(" "):
            key_t, value = (), rest.strip()
        else:
            continue
        with contextlib.suppress(ValueError):
            out[key_t] = out.get(key_t, 0.0) + float(value.split()[0])
    return out


def events_consumed(text: str) -> dict[str, float]:
    """Events taken from Kafka, per outcome (``handled``, ``duplicate`` …), summed over
    consumers and topics; ``total`` is all of them."""
    out: dict[str, float] = {}
    for labels, value in parse_metric(text, "leadflow_events_consumed_total").items():
        outcome = dict(labels).get("outcome", "?")
        out[outcome] = out.get(outcome, 0.0) + value
        out["total"] = out.get("total", 0.0) + value
    return out


# --- leads.routing: who got assigned, when, how often ---------------------------------------


class AssignmentWatcher:
    """Reads ``leads.routing`` from its end (no consumer group) and records, per lead, when
    the first ``lead.assigned`` with role sdr arrived (perf_counter), and its company."""

    def __init__(self, bootstrap: str, fetch_max_wait_ms: int) -> None:
        self.bootstrap = bootstrap
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.first_assigned: dict[str, float] = {}
        self.decided_at: dict[str, float] = {}  # the assignment's ce_time (epoch seconds)
        self.by_company: Counter[str] = Counter()
        self.sdr_assignments = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    @property
    def started(self) -> bool:
        return self._task is not None

    async def start(self, topic: str = "leads.routing") -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=self.fetch_max_wait_ms,
        )
        await consumer.start()
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer.stop()
            raise RuntimeError(f"topic {topic} has no partitions")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the positions now, so nothing produced later is missed
            await consumer.position(tp)
        self._consumer = consumer
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            batch = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.perf_counter()
            for messages in batch.values():
                for m in messages:
                    if dict(m.headers).get("ce_type") != b"lead.assigned":
                        continue
                    try:
                        data = json.loads(m.value or b"{}")
                    except ValueError:
                        continue
                    if not isinstance(data, dict) or data.get("role") != "sdr":
                        continue
                    self.sdr_assignments += 1
                    lead_id = str(data.get("lead_id"))
                    if lead_id not in self.first_assigned:
                        self.first_assigned[lead_id] = now
                        with contextlib.suppress(ValueError, TypeError):
                            # When routing decided (its clock), to tell the system's
                            # latency from this reader's.
                            stamp = dict(m.headers).get("ce_time", b"").decode()
                            self.decided_at[lead_id] = datetime.fromisoformat(stamp).timestamp()
                        self.by_company[str(data.get("company"))] += 1
            if batch:
                self._new.set()

    async def wait_for(self, lead_ids: set[str], timeout_s: float) -> bool:
        """Until every lead in ``lead_ids`` was assigned, at most ``timeout_s``."""
        end = time.monotonic() + timeout_s
        while not lead_ids.issubset(self.first_assigned.keys()):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new.wait(), timeout=min(left, 0.5))
        return True

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


# --- the leads the benchmark posts ----------------------------------------------------------


def mql_lead(i: int, run: str, company: str = "BenchLive") -> dict[str, Any]:
    """A lead the demo rules score as an MQL and route to an NA SDR."""
    return {
        "email": f"bench-{run}-{i}@bigcorp-{i % 97}.com",
        "first_name": "Bench",
        "company": company,
        "title": "VP Sales",
        "country": "US",
        "employees": 2500,
        "industry": "software",
    }
