"""The benchmark suite behind ``make bench`` (issue 5). One command, bounded in time:

    .venv/bin/python bench/run.py                       # SQLite and PostgreSQL, ≤ ~25 min
    .venv/bin/python bench/run.py --quick               # both databases, ≤ ~5 min
    .venv/bin/python bench/run.py --database sqlite --only speed_to_lead,max_rate
    .venv/bin/python bench/run.py --profile routing     # + flame graph during 50 leads/s

Per database it starts the embedded broker and every service (``System``, as the tests do;
PostgreSQL gets fresh databases per run, dropped afterwards), loads the demo organisation,
lifts the demo SDRs' daily capacity, and runs the phases below, each bounded in time. It
writes ``bench/results/bench-<UTC>-<database>.json``, a markdown summary
``bench/results/bench-<UTC>-summary.md`` and prints the summary table: every figure next to
its baseline, the ratio and the issue's target.

Phases: idle · baseline_hop · baseline_endpoint · baseline_pg · speed_to_lead · max_rate
(+ ledger) · scale_out · import · intake_capacity. See docs/benchmarks.md for the method.
Load generators talk to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))

import baselines
from common import (
    PG_ADMIN,
    AssignmentWatcher,
    Monitor,
    events_consumed,
    mql_lead,
    percentiles,
    pg_available,
    pg_execute,
    pg_url,
    ratio,
)
from flamegraph import py_spy_record
from loadgen import HttpPool, LoopResult, Response, open_loop

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.system import EMBEDDED_FETCH_MAX_WAIT_MS, SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.ledger import consumer_groups, group_lag, read_ledger
from leadflow_shared.settings import DEV_JWT_SECRET

RESULTS = Path(__file__).parent / "results"
PHASES = (
    "idle",
    "baseline_hop",
    "baseline_endpoint",
    "baseline_pg",
    "speed_to_lead",
    "max_rate",
    "scale_out",
    "import",
    "intake_capacity",
)
CONSUMING = ("scoring", "routing", "deals", "webhooks", "console")


@dataclass(frozen=True)
class Plan:
    """Durations and sizes: the full run and ``--quick``."""

    budget_s: float  # per database; a phase that would not fit is skipped, not cut
    backlog_wait_s: float  # before a phase: wait this long for earlier leads to be assigned
    settle_s: float
    idle_s: float
    hop_s: float
    endpoint_s: float
    pg_events: int
    pg_events_per_message: int
    s2l_rates: tuple[float, ...]
    s2l_s: float
    drain_s: float
    steps: tuple[float, ...]
    step_s: float
    step_drain_s: float
    ledger_drain_s: float
    import_rows: int
    import_accept_timeout_s: float
    import_route_timeout_s: float
    import_live_rate: float
    import_live_s: float
    burst_rate: float
    burst_s: float
    burst_drain_s: float
    rebalance_s: float
    capacity_s: float
    concurrency: int = 64


FULL = Plan(
    budget_s=12 * 60,
    backlog_wait_s=90,
    settle_s=5,
    idle_s=20,
    hop_s=10,
    endpoint_s=10,
    pg_events=50_000,
    pg_events_per_message=2_000,
    s2l_rates=(20, 50, 200),
    s2l_s=20,
    drain_s=30,
    steps=(10, 20, 50, 100, 200, 300, 500, 750, 1000),
    step_s=10,
    step_drain_s=10,
    ledger_drain_s=90,
    import_rows=100_000,
    import_accept_timeout_s=120,
    import_route_timeout_s=240,
    import_live_rate=20,
    import_live_s=60,
    burst_rate=500,
    burst_s=6,
    burst_drain_s=60,
    rebalance_s=8,
    capacity_s=10,
)
QUICK = Plan(
    budget_s=135,
    backlog_wait_s=8,
    settle_s=2,
    idle_s=6,
    hop_s=3,
    endpoint_s=3,
    pg_events=5_000,
    pg_events_per_message=300,
    s2l_rates=(20, 50, 200),
    s2l_s=3,
    drain_s=5,
    steps=(20, 50, 100, 200, 300, 500),
    step_s=2,
    step_drain_s=3,
    ledger_drain_s=10,
    import_rows=2_000,
    import_accept_timeout_s=15,
    import_route_timeout_s=10,
    import_live_rate=20,
    import_live_s=5,
    burst_rate=300,
    burst_s=2,
    burst_drain_s=6,
    rebalance_s=4,
    capacity_s=3,
)


def _needed(plan: Plan) -> dict[str, float]:
    """About how long each phase takes when the system keeps up: a phase is skipped when
    less than this is left of the budget."""
    return {
        "idle": plan.settle_s + plan.idle_s,
        "baseline_hop": 2 * plan.hop_s + 8,
        "baseline_endpoint": 3 * plan.endpoint_s + 4,
        "baseline_pg": 8,
        "speed_to_lead": len(plan.s2l_rates) * (plan.s2l_s + 1),
        "max_rate": 2 * (plan.step_s + 1) + 4,
        "import": 10,
        "scale_out": 2 * (plan.burst_s + 2) + plan.rebalance_s + 8,
        "intake_capacity": plan.capacity_s + 1,
    }


def _worst_case(plan: Plan) -> dict[str, float]:
    """The longest each phase can take under ``plan`` (its hard timeout adds a minute)."""
    wait = plan.backlog_wait_s
    return {
        "idle": plan.settle_s + plan.idle_s,
        "baseline_hop": 2 * (plan.hop_s + 15) + 20,
        "baseline_endpoint": 3 * plan.endpoint_s + 60,
        "baseline_pg": 150,
        "speed_to_lead": len(plan.s2l_rates) * (wait + plan.s2l_s + plan.drain_s + 30),
        "max_rate": wait
        + len(plan.steps) * (plan.step_s + plan.step_drain_s + 15)
        + plan.ledger_drain_s
        + 60,
        "import": wait
        + plan.import_accept_timeout_s
        + plan.import_route_timeout_s
        + plan.import_live_s
        + plan.drain_s
        + 30,
        "scale_out": 2 * (wait + plan.burst_s + plan.burst_drain_s + 30) + plan.rebalance_s + 120,
        "intake_capacity": plan.capacity_s + 40,
    }


class PhaseSkipped(Exception):
    """A phase that cannot run here (reason in the message), reported, not fatal."""


@dataclass
class Bench:
    plan: Plan
    database: str
    system: System
    monitor: Monitor
    watcher: AssignmentWatcher
    run_id: str
    log_dir: Path
    token: str
    profile: tuple[str, ...] = ()
    # What the running phase measured so far: reported if it fails or runs out of time.
    partial: dict[str, Any] = field(default_factory=dict)
    accepted: dict[str, float] = field(default_factory=dict)  # every live lead: 2xx time
    _seq: int = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def next_lead(self, company: str = "BenchLive") -> dict[str, Any]:
        self._seq += 1
        return mql_lead(self._seq, self.run_id, company)

    def urls(self) -> dict[str, list[str]]:
        """Every process's base URL per service (replicas included)."""
        out = {name: [svc.url] for name, svc in self.system.services.items()}
        for replica in self.system.replicas:
            out[replica.definition.name].append(replica.url)
        return out

    async def scrape_events(self) -> dict[str, float]:
        """Events consumed so far per service (all its processes)."""
        out: dict[str, float] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            for name, urls in self.urls().items():
                total = 0.0
                for url in urls:
                    with contextlib.suppress(httpx.HTTPError):
                        total += events_consumed((await client.get(f"{url}/metrics")).text).get(
                            "total", 0.0
                        )
                out[name] = total
        return out

    async def lag(self) -> dict[str, int | None]:
        groups: dict[str, set[str]] = {}
        async with httpx.AsyncClient(timeout=5) as client:
            for svc in self.system.services.values():
                with contextlib.suppress(httpx.HTTPError):
                    for g, topics in consumer_groups(
                        (await client.get(f"{svc.url}/metrics")).text
                    ).items():
                        groups.setdefault(g, set()).update(topics)
        return await group_lag(self.system.bootstrap_servers, groups)

    async def post_live(
        self, rate: float, duration_s: float, company: str = "BenchLive"
    ) -> tuple[dict[str, float], LoopResult]:
        """Post MQL leads open-loop; returns {lead_id: time of the 2xx} and the loop result."""
        pool = HttpPool(self.system.url("lead-intake"), size=256, timeout_s=30)
        accepted: dict[str, float] = {}

        async def send(i: int) -> Response:
            return await pool.post_json("/v1/leads", self.next_lead(company), self.auth)

        def on_response(i: int, response: Response, now: float) -> None:
            if 200 <= response.status < 300:
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    accepted[str(response.json()["lead_id"])] = now

        try:
            result = await open_loop(rate, duration_s, send, on_response)
        finally:
            await pool.close()
        self.accepted.update(accepted)
        return accepted, result

    def speed(self, accepted: dict[str, float]) -> dict[str, Any]:
        assigned = self.watcher.first_assigned
        samples = [(assigned[k] - t) * 1000 for k, t in accepted.items() if k in assigned]
        return percentiles(samples, missing=len(accepted) - len(samples))

    async def quiet(self, timeout_s: float) -> bool:
        """Wait until every live lead posted so far was assigned (the backlog drained)."""
        return await self.watcher.wait_for(set(self.accepted), timeout_s)

    async def settle(self) -> dict[str, Any]:
        """Before a phase: wait (bounded) for the backlog of earlier phases to drain, and
        say how many earlier leads were still unassigned when the phase began."""
        t = time.perf_counter()
        await self.quiet(self.plan.backlog_wait_s)
        left = sum(1 for k in self.accepted if k not in self.watcher.first_assigned)
        return {"waited_s": round(time.perf_counter() - t, 1), "backlog_unassigned": left}

    async def measured(
        self, name: str, body: Callable[[], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Run ``body`` as one monitored phase: CPU s and peak RSS per process, events
        consumed per service and CPU ms per consumed event."""
        before = await self.scrape_events()
        with self.monitor.phase(name) as usage:
            out = await body()
        after = await self.scrape_events()
        events = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
        per_event: dict[str, float | None] = {}
        for svc in CONSUMING:
            cpu = sum(
                (v.get("cpu_s") or 0.0)
                for k, v in usage["processes"].items()
                if k == svc or k.startswith(f"{svc}-replica")
            )
            per_event[svc] = round(cpu * 1000 / events[svc], 3) if events.get(svc) else None
        handler_cpu = sum(
            (v.get("cpu_s") or 0.0)
            for k, v in usage["processes"].items()
            if k.split("-replica")[0] in CONSUMING
        )
        handled = sum(events.get(s, 0.0) for s in CONSUMING)
        out["resources"] = {
            **usage,
            "events_consumed": events,
            "cpu_ms_per_event": per_event,
            "handler_cpu_ms_per_event": round(handler_cpu * 1000 / handled, 3) if handled else None,
        }
        return out


# --- phases ----------------------------------------------------------------------------------


async def phase_idle(b: Bench) -> dict[str, Any]:
    """The whole system with no traffic (the first phase: nothing is queued, and the
    benchmark's own watcher on leads.routing does not run yet)."""
    await asyncio.sleep(b.plan.settle_s)
    with b.monitor.phase("idle") as usage:
        await asyncio.sleep(b.plan.idle_s)
    per = {
        k: round(100 * (v["cpu_s"] or 0.0) / usage["seconds"], 1)
        for k, v in usage["processes"].items()
    }
    return {
        "seconds": usage["seconds"],
        "system_pct_of_one_core": round(100 * usage["system_cores_used"], 1),
        "pct_of_one_core": per,
        "resources": usage,
    }


async def phase_baseline_hop(b: Bench) -> dict[str, Any]:
    wait = EMBEDDED_FETCH_MAX_WAIT_MS["routing"]
    out = {}
    for rate in (50.0, 200.0):
        out[f"{rate:g}"] = await baselines.kafka_hop(
            b.system.bootstrap_servers, rate, b.plan.hop_s, wait
        )
    return out


async def phase_baseline_endpoint(b: Bench) -> dict[str, Any]:
    async with baselines.bare_endpoint_server(
        b.system.bootstrap_servers, b.log_dir, b.monitor
    ) as url:
        with b.monitor.phase("baseline_endpoint_capacity") as usage:
            capacity = await baselines.http_capacity(
                url,
                "/v1/leads",
                lambda i: mql_lead(i, "bare"),
                b.auth,
                concurrency=b.plan.concurrency,
                duration_s=b.plan.endpoint_s,
            )
        cpu = usage["processes"].get("bare-endpoint", {}).get("cpu_s")
        capacity["cpu_ms_per_request"] = (
            round(cpu * 1000 / capacity["ok"], 3) if cpu and capacity["ok"] else None
        )
        latency = {}
        for rate in (50.0, 200.0):
            latency[f"{rate:g}"] = await baselines.http_latency(
                url,
                "/v1/leads",
                lambda i: mql_lead(i, "bare"),
                b.auth,
                rate=rate,
                duration_s=b.plan.endpoint_s,
            )
    return {"capacity": capacity, "latency": latency}


async def phase_baseline_pg(b: Bench) -> dict[str, Any]:
    why = await pg_available()
    if why:
        raise PhaseSkipped(f"PostgreSQL not reachable at {PG_ADMIN}: {why}")
    return await baselines.pg_batch_consumer(
        b.system.bootstrap_servers,
        b.plan.pg_events,
        b.plan.pg_events_per_message,
        b.log_dir,
        timeout_s=90,
    )


async def phase_speed_to_lead(b: Bench) -> dict[str, Any]:
    out: dict[str, Any] = b.partial
    for rate in b.plan.s2l_rates:
        key = f"{rate:g}"
        if not await b.quiet(b.plan.backlog_wait_s):
            out[key] = {"skipped": "the backlog of the previous rate did not drain"}
            continue

        async def one(rate: float = rate) -> dict[str, Any]:
            profiling: list[asyncio.Task[dict[str, Any]]] = []
            if rate == 50 and b.profile:
                for svc in b.profile:
                    profiling.append(
                        asyncio.create_task(
                            py_spy_record(
                                b.system.services[svc].process.pid,
                                b.plan.s2l_s,
                                RESULTS / f"flame-{b.run_id}-{b.database}-{svc}-50ps.svg",
                            )
                        )
                    )
            accepted, result = await b.post_live(rate, b.plan.s2l_s)
            drained = await b.watcher.wait_for(set(accepted), b.plan.drain_s)
            res: dict[str, Any] = {
                "rate_per_s": rate,
                "http": {**result.summary(), "latency_ms": percentiles(result.latencies_ms)},
                "accepted": len(accepted),
                "drained_within_s": b.plan.drain_s if drained else None,
                "speed_to_lead_ms": b.speed(accepted),
            }
            if profiling:
                res["flame_graphs"] = [await t for t in profiling]
            return res

        out[key] = await b.measured(f"speed_to_lead_{key}", one)
    return out


async def phase_max_rate(b: Bench) -> dict[str, Any]:
    """Step the offered rate; a step is sustained when the intake answered ≥ 99% with 2xx,
    every accepted lead was assigned within ``step_drain_s`` after the step, and the p99
    speed-to-lead stayed ≤ 2 s. Then drain and check the ledger."""
    before = await b.settle()
    steps: list[dict[str, Any]] = []
    b.partial["steps"] = steps
    phase_leads: dict[str, float] = {}
    best: float | None = None
    stop_reason = "every step sustained"
    for rate in b.plan.steps:

        async def step(rate: float = rate) -> dict[str, Any]:
            accepted, result = await b.post_live(rate, b.plan.step_s)
            phase_leads.update(accepted)
            drained = await b.watcher.wait_for(set(accepted), b.plan.step_drain_s)
            return {
                "rate_per_s": rate,
                "http": result.summary(),
                "accepted": len(accepted),
                "drained": drained,
                "speed_to_lead_ms": b.speed(accepted),
                "lag_after": await b.lag(),
            }

        s = await b.measured(f"max_rate_{rate:g}", step)
        http = s["http"]
        p99 = s["speed_to_lead_ms"].get("p99")
        reasons = []
        if http["ok"] < 0.99 * http["offered"]:
            reasons.append(f"intake answered 2xx to {http['ok']}/{http['offered']}")
        if http["late_starts"] > 0.05 * http["offered"]:
            reasons.append("the load generator fell behind its schedule")
        if not s["drained"]:
            reasons.append(f"not all assigned {b.plan.step_drain_s:g}s after the step")
        if p99 is None or p99 > 2000:
            reasons.append(f"p99 speed-to-lead {p99} ms > 2000 ms")
        s["sustained"] = not reasons
        s["why_not"] = reasons
        steps.append(s)
        if reasons:
            stop_reason = f"{rate:g}/s: " + "; ".join(reasons)
            break
        best = rate
    drained = await b.watcher.wait_for(set(phase_leads), b.plan.ledger_drain_s)
    ledger = (await read_ledger(b.system.bootstrap_servers)).check(set(phase_leads))
    return {
        "before": before,
        "max_sustained_per_s": best,
        "stopped_at": stop_reason,
        "steps": steps,
        "ledger": {
            "accepted": len(phase_leads),
            **ledger,
            "drained_within_s": b.plan.ledger_drain_s if drained else None,
        },
    }


IMPORT_DONE = {"done", "completed", "complete", "finished", "succeeded", "success"}
IMPORT_FAILED = {"failed", "error", "errored", "cancelled", "canceled"}


def _write_csv(path: Path, rows: int, run_id: str, company: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("email,first_name,company,title,country,employees,industry\n")
        for i in range(rows):
            email = f"import-{run_id}-{i}@bigcorp-{i % 89}.com"
            f.write(f"{email},Imp,{company},VP Sales,US,2500,software\n")


async def phase_import(b: Bench) -> dict[str, Any]:
    """A CSV of ``import_rows`` MQL leads to ``POST /v1/leads/import`` while live leads keep
    arriving; time to accept, time until every imported lead is routed, live speed-to-lead."""
    before = await b.settle()
    company = f"BenchImport-{b.run_id}-{b.database}"
    csv_path = b.log_dir.parent / f"import-{b.plan.import_rows}.csv"
    await asyncio.to_thread(_write_csv, csv_path, b.plan.import_rows, b.run_id, company)
    intake = b.system.url("lead-intake")
    out: dict[str, Any] = {
        "before": before,
        "rows": b.plan.import_rows,
        "csv_bytes": csv_path.stat().st_size,
    }
    b.partial.update(out)

    async def run() -> dict[str, Any]:
        live_task = asyncio.create_task(b.post_live(b.plan.import_live_rate, b.plan.import_live_s))
        t0 = time.perf_counter()
        try:
            res, status = await _upload(b, intake, csv_path, t0)
            b.partial.update(res)
        except BaseException:
            live_task.cancel()
            raise
        if status is None:  # not available: say why, stop the live leads
            live_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await live_task
            return res
        res["available"] = True
        accept_s = status.pop("_seconds", res["http_seconds"])
        res["status"] = {k: (len(v) if isinstance(v, list) else v) for k, v in status.items()}
        state = str(status.get("status", "")).lower()
        done = state in IMPORT_DONE or state.startswith("done")
        # Only a finished import has a time to accept; else how far it got is in "status".
        res["time_to_accept_s"] = accept_s if done else None
        accepted_rows = int(status.get("accepted", 0) or 0)
        res["accepted_rows"] = accepted_rows
        b.partial.update(res)
        # Every imported lead routed: count lead.assigned (sdr) carrying the import's company.
        deadline = time.monotonic() + b.plan.import_route_timeout_s
        try:
            # Polls the watcher's counter (it is fed by its own task).
            while b.watcher.by_company[company] < accepted_rows and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            routed = b.watcher.by_company[company]
            res["routed"] = routed
            b.partial.update(res)
            res["time_to_all_routed_s"] = (
                round(time.perf_counter() - t0, 3)
                if accepted_rows and routed >= accepted_rows
                else None
            )
            res["routed_per_s"] = round(routed / (time.perf_counter() - t0), 1)
            live, result = await live_task
        except BaseException:
            live_task.cancel()
            raise
        await b.watcher.wait_for(set(live), b.plan.drain_s)
        res["live"] = {
            "rate_per_s": b.plan.import_live_rate,
            "http": {**result.summary(), "latency_ms": percentiles(result.latencies_ms)},
            "speed_to_lead_ms": b.speed(live),
        }
        return res

    out.update(await b.measured("import", run))
    with contextlib.suppress(OSError):
        csv_path.unlink()
    return out


async def _file_chunks(path: Path, size: int = 1 << 16) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


async def _upload(
    b: Bench, intake: str, csv_path: Path, t0: float
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """POST the CSV; (result so far, final import status) or (why not available, None).

    First as a streamed ``text/csv`` body with ``Prefer: respond-async`` (Contract v2's
    bulk lane); if the intake wants a form upload instead (415/422), as multipart. A 202
    with ``import_id`` is followed on ``GET /v1/leads/imports/{id}`` until ``done`` or
    ``failed``; a 200 with the counts (the synchronous API) is done at once."""
    res: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(b.plan.import_accept_timeout_s, connect=5)
        ) as client:
            r = await client.post(
                f"{intake}/v1/leads/import",
                content=_file_chunks(csv_path),
                headers={**b.auth, "Content-Type": "text/csv", "Prefer": "respond-async"},
            )
            res["upload"] = "text/csv body"
            if r.status_code in (415, 422):
                t0 = time.perf_counter()
                with csv_path.open("rb") as fh:
                    r = await client.post(
                        f"{intake}/v1/leads/import",
                        files={"file": (csv_path.name, fh, "text/csv")},
                        headers={**b.auth, "Prefer": "respond-async"},
                    )
                res["upload"] = "multipart/form-data"
            res["http_status"] = r.status_code
            res["http_seconds"] = round(time.perf_counter() - t0, 3)
            body: Any = None
            with contextlib.suppress(ValueError):
                body = r.json()
            if r.status_code in (200, 201, 202) and isinstance(body, dict) and "import_id" in body:
                res["import_id"] = body["import_id"]
                state = str(body.get("status", "")).lower()
                if state in IMPORT_DONE or state in IMPORT_FAILED:
                    return res, {**body, "_seconds": res["http_seconds"]}
                return res, await _poll_import(client, intake, str(body["import_id"]), b, t0)
            if r.status_code == 200 and isinstance(body, dict) and "accepted" in body:
                return res, {"status": "done (synchronous)", **body}
            res["not_available"] = f"POST /v1/leads/import answered {r.status_code}: {r.text[:300]}"
    except httpx.HTTPError as exc:
        res["not_available"] = f"{type(exc).__name__}: {exc}"[:300]
    res["available"] = False
    return res, None


async def _poll_import(
    client: httpx.AsyncClient, intake: str, import_id: str, b: Bench, t0: float
) -> dict[str, Any]:
    deadline = t0 + b.plan.import_accept_timeout_s
    last: dict[str, Any] = {}
    while time.perf_counter() < deadline:
        r = await client.get(f"{intake}/v1/leads/imports/{import_id}", headers=b.auth)
        if r.status_code == 200:
            last = r.json()
            state = str(last.get("status", "")).lower()
            if state in IMPORT_DONE or state in IMPORT_FAILED:
                return {**last, "_seconds": round(time.perf_counter() - t0, 3)}
        await asyncio.sleep(0.25)
    return {
        **last,
        "status": f"not done after {b.plan.import_accept_timeout_s:g}s",
        "last_status": last.get("status"),
    }


async def phase_scale_out(b: Bench) -> dict[str, Any]:
    """Whole-pipeline throughput draining a burst, with one and then two processes of
    scoring and routing (same consumer groups)."""
    before = await b.settle()

    async def warm_up() -> None:
        # A few leads first, assigned before the burst: every process has its caches
        # filled and its partitions (the group has settled after a rebalance).
        await b.post_live(10, 2)
        await b.quiet(b.plan.backlog_wait_s)

    async def burst() -> dict[str, Any]:
        t0 = time.perf_counter()
        accepted, result = await b.post_live(b.plan.burst_rate, b.plan.burst_s)
        await b.watcher.wait_for(set(accepted), b.plan.burst_drain_s)
        times = sorted(
            b.watcher.first_assigned[k] for k in accepted if k in b.watcher.first_assigned
        )
        span = (times[-1] - t0) if times else None
        # The pipeline's own pace: first to last assignment (the intake's pace excluded).
        drain = (times[-1] - times[0]) if len(times) > 1 else None
        return {
            "offered_per_s": b.plan.burst_rate,
            "http": result.summary(),
            "accepted": len(accepted),
            "assigned": len(times),
            "assigned_per_s": round(len(times) / span, 1) if span else None,
            "drain_per_s": round((len(times) - 1) / drain, 1) if drain else None,
            "speed_to_lead_ms": b.speed(accepted),
        }

    await warm_up()
    one = await b.measured("scale_out_1", burst)
    one["before"] = before
    b.partial["one_process"] = one
    services = ("scoring", "routing")
    replicas = await asyncio.gather(  # both start (and import) at once
        *(asyncio.to_thread(b.system.start_replica, svc, free_port()) for svc in services)
    )
    for svc, replica in zip(services, replicas, strict=True):
        b.monitor.track(f"{svc}-replica-2", replica.process.pid)
    await asyncio.sleep(b.plan.rebalance_s)  # the groups rebalance onto two members
    try:
        before_two = await b.settle()
        await warm_up()
        two = await b.measured("scale_out_2", burst)
        two["before"] = before_two
    finally:  # the phases after this one run on one process each again
        await asyncio.to_thread(_stop_replicas, b)
    return {
        "one_process": one,
        "two_processes": two,
        "ratio_two_to_one": ratio(two.get("assigned_per_s"), one.get("assigned_per_s")),
    }


def _stop_replicas(b: Bench) -> None:
    for replica in list(b.system.replicas):
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()
        b.system.replicas.remove(replica)
        b.monitor.untrack(f"{replica.definition.name}-replica-2")


async def phase_intake_capacity(b: Bench) -> dict[str, Any]:
    """Closed loop against ``POST /v1/leads`` at the bare endpoint's concurrency: the
    intake's maximum accept rate. Last phase: the flood it leaves is not drained."""

    async def run() -> dict[str, Any]:
        res = await baselines.http_capacity(
            b.system.url("lead-intake"),
            "/v1/leads",
            lambda i: b.next_lead("BenchFlood"),
            b.auth,
            concurrency=b.plan.concurrency,
            duration_s=b.plan.capacity_s,
        )
        return res

    out = await b.measured("intake_capacity", run)
    cpu = out["resources"]["processes"].get("lead-intake", {}).get("cpu_s")
    out["cpu_ms_per_request"] = round(cpu * 1000 / out["ok"], 3) if cpu and out["ok"] else None
    return out


PHASE_FUNCS: dict[str, Callable[[Bench], Awaitable[dict[str, Any]]]] = {
    "idle": phase_idle,
    "baseline_hop": phase_baseline_hop,
    "baseline_endpoint": phase_baseline_endpoint,
    "baseline_pg": phase_baseline_pg,
    "speed_to_lead": phase_speed_to_lead,
    "max_rate": phase_max_rate,
    "import": phase_import,
    "scale_out": phase_scale_out,
    "intake_capacity": phase_intake_capacity,
}


# --- one database ---------------------------------------------------------------------------


async def run_database(
    database: str,
    plan: Plan,
    only: tuple[str, ...],
    profile: tuple[str, ...],
    run_id: str,
    quick: bool = False,
) -> dict[str, Any]:
    started = time.monotonic()
    result: dict[str, Any] = {
        "benchmark": "leadflow bench suite",
        "run_id": run_id,
        "database": database,
        "quick": quick,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {
            "plan": plan.__dict__,
            "fetch_max_wait_ms": EMBEDDED_FETCH_MAX_WAIT_MS,
            "broker": os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or "embedded Tansu (memory)",
        },
        "phases": {},
        "errors": {},
    }
    env: dict[str, str] = {"LEADFLOW_LOG_LEVEL": "WARNING"}
    databases: list[str] = []
    if database == "postgres":
        why = await pg_available()
        if why:
            result["errors"]["startup"] = f"PostgreSQL not reachable at {PG_ADMIN}: {why}"
            return result
        for s in SERVICES:
            db = f"leadflow_bench_{run_id}_{s.env_suffix.lower()}"
            databases.append(db)
            env[f"DATABASE_URL_{s.env_suffix}"] = pg_url(db)
        await pg_execute([f'CREATE DATABASE "{db}"' for db in databases])
    monitor = Monitor()
    tmp = Path(tempfile.mkdtemp(prefix=f"leadflow-bench-{database}-"))
    log_dir = tmp / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    system = System(
        data_dir=tmp / "data",
        ports={s.name: free_port() for s in SERVICES},
        broker_port=free_port(),
        env=env,
    )
    watcher: AssignmentWatcher | None = None
    try:
        t = time.perf_counter()
        await asyncio.to_thread(system.start, ready_timeout_s=120)
        admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin")
        await asyncio.to_thread(
            load_demo, {s.name: system.url(s.name) for s in SERVICES}, admin, system.data_dir
        )
        await asyncio.to_thread(lift_daily_capacity, system.url("routing"), admin)
        result["startup_s"] = round(time.perf_counter() - t, 2)
        if system.broker is not None and system.broker.process is not None:
            monitor.track("broker", system.broker.process.pid)
        for name, svc in system.services.items():
            monitor.track(name, svc.process.pid)
        monitor.track("bench (load generator)", os.getpid())
        monitor.start()
        # Started after the idle phase: its fetches would count as the system's idle CPU.
        watcher = AssignmentWatcher(system.bootstrap_servers, EMBEDDED_FETCH_MAX_WAIT_MS["routing"])
        bench = Bench(
            plan=plan,
            database=database,
            system=system,
            monitor=monitor,
            watcher=watcher,
            run_id=run_id,
            log_dir=log_dir,
            token=mint_token(DEV_JWT_SECRET, sub="bench", role="integration"),
            profile=profile,
        )
        worst, needed = _worst_case(plan), _needed(plan)
        for name in PHASES:
            if name not in only:
                continue
            left = plan.budget_s - (time.monotonic() - started)
            if left < needed[name] and name != "intake_capacity":
                result["phases"][name] = {"skipped": f"time budget ({left:.0f}s left)"}
                print(f"[{database}] {name}: skipped (time budget)", flush=True)
                continue
            print(f"[{database}] {name} …", flush=True)
            if name != "idle" and not watcher.started:
                await watcher.start()
            t = time.perf_counter()
            bench.partial = {}
            try:
                # Each phase ends by itself within its worst case; the budget may cut a
                # slow phase short (a TimeoutError for that phase, with what it measured).
                # intake_capacity is short and last: keep time for it.
                reserve = needed["intake_capacity"] + 10 if "intake_capacity" in only else 0
                if name == "intake_capacity":
                    reserve = 0
                cap = max(left - reserve, needed[name]) + 10
                async with asyncio.timeout(min(worst[name] + 60, cap)):
                    result["phases"][name] = await PHASE_FUNCS[name](bench)
            except PhaseSkipped as exc:
                result["phases"][name] = {"skipped": str(exc)}
            except Exception as exc:
                result["errors"][name] = f"{type(exc).__name__}: {exc}"
                result["phases"][name] = {"incomplete": result["errors"][name], **bench.partial}
                (log_dir / f"phase-{name}.traceback").write_text(traceback.format_exc())
                print(f"[{database}] {name}: FAILED {exc!r}", flush=True)
            print(f"[{database}] {name} done in {time.perf_counter() - t:.1f}s", flush=True)
        try:  # every live lead the run posted (the intake flood need not have drained)
            ledger = await read_ledger(system.bootstrap_servers)
            result["ledger_whole_run"] = {
                "every_sdr_assignment": ledger.check(),
                "live_leads_posted": ledger.check(set(bench.accepted)),
            }
        except Exception as exc:
            result["errors"]["ledger"] = f"{type(exc).__name__}: {exc}"
        result["phase_resources"] = monitor.phases
    except Exception as exc:
        result["errors"]["startup"] = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        if watcher is not None:
            with contextlib.suppress(Exception):
                await watcher.stop()
        monitor.stop()
        await asyncio.to_thread(system.stop)
        errors = _log_errors(system.data_dir / "logs")
        if errors:
            result["service_log_errors"] = errors
        if databases:
            with contextlib.suppress(Exception):
                await pg_execute([f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)' for d in databases])
        result["elapsed_s"] = round(time.monotonic() - started, 1)
        result["logs"] = str(tmp)
    return result


def _log_errors(logs: Path) -> dict[str, str]:
    out = {}
    if logs.exists():
        for log in sorted(logs.glob("*.log")):
            text = log.read_text(errors="replace")
            if '"level": "error"' in text or "Traceback" in text:
                out[log.stem] = text[-1500:]
    return out


# --- the summary ----------------------------------------------------------------------------


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict):
            return None
        d = d.get(p)
    return d


def summary_rows(r: dict[str, Any]) -> list[tuple[str, Any, Any, Any, str]]:
    """(figure, baseline, measured, ratio, target)."""
    ph = r.get("phases", {})
    rows: list[tuple[str, Any, Any, Any, str]] = []
    hop50 = _get(ph, "baseline_hop", "50", "latency_ms")
    hop200 = _get(ph, "baseline_hop", "200", "latency_ms")
    targets = {
        ("20", "p50"): "",
        ("50", "p50"): "≤ 25",
        ("50", "p99"): "≤ 100",
        ("200", "p99"): "≤ 250",
    }
    for rate in ("20", "50", "200"):
        s2l = _get(ph, "speed_to_lead", rate)
        base = hop200 if rate == "200" else hop50
        for q in ("p50", "p95", "p99"):
            measured = _get(s2l, "speed_to_lead_ms", q)
            if s2l and "skipped" in s2l:
                measured = f"skipped ({s2l['skipped']})"
            b = _get(base, q)
            rows.append(
                (
                    f"speed-to-lead {q} ms at {rate}/s (baseline: Kafka hop)",
                    b,
                    measured,
                    ratio(measured, b) if isinstance(measured, (int, float)) else None,
                    targets.get((rate, q), ""),
                )
            )
    mr = ph.get("max_rate", {})
    ledger = mr.get("ledger", {})
    rows.append(
        (
            "max sustained rate, leads/s (baseline: bare endpoint req/s)",
            _get(ph, "baseline_endpoint", "capacity", "ok_per_s"),
            mr.get("max_sustained_per_s", mr.get("skipped")),
            ratio(
                mr.get("max_sustained_per_s"), _get(ph, "baseline_endpoint", "capacity", "ok_per_s")
            ),
            "≥ 200 (aim 500)",
        )
    )
    if ledger:
        rows.append(
            (
                "ledger: assigned exactly once / accepted",
                None,
                f"{ledger.get('assigned_exactly_once')}/{ledger.get('accepted')} "
                f"(lost {ledger.get('not_assigned')}, "
                f"twice {ledger.get('assigned_more_than_once')}) "
                f"{'✓' if ledger.get('ok') else '✗'}",
                None,
                "all, none lost, none twice",
            )
        )
    whole = _get(r, "ledger_whole_run", "every_sdr_assignment")
    if whole:
        rows.append(
            (
                f"whole run: leads with more than one SDR decision (of {whole.get('leads')})",
                None,
                whole.get("assigned_more_than_once"),
                None,
                "≤ 0",
            )
        )
    pg = _get(ph, "baseline_pg", "batch", "cpu_ms_per_event")
    for rate in ("50", "200"):
        cpu = _get(ph, "speed_to_lead", rate, "resources", "handler_cpu_ms_per_event")
        rows.append(
            (
                f"handler CPU ms/event at {rate}/s (baseline: pass-through batch consumer)",
                pg,
                cpu,
                ratio(cpu, pg, 1),
                "≤ 0.5",
            )
        )
    rows.append(
        (
            "pass-through consumer events/s (batch; per message)",
            None,
            f"{_get(ph, 'baseline_pg', 'batch', 'events_per_s')}; "
            f"{_get(ph, 'baseline_pg', 'per_message', 'events_per_s')}",
            None,
            "yardstick ≈ 32,000; 650",
        )
    )
    bare = _get(ph, "baseline_endpoint", "capacity", "ok_per_s")
    intake = _get(ph, "intake_capacity", "ok_per_s")
    rows.append(
        (
            "intake POST /v1/leads req/s, one process (baseline: bare endpoint)",
            bare,
            intake,
            ratio(intake, bare),
            "≥ 1,000 and ≥ 0.6x",
        )
    )
    for rate in ("50", "200"):
        b = _get(ph, "baseline_endpoint", "latency", rate, "latency_ms", "p99")
        m = _get(ph, "speed_to_lead", rate, "http", "latency_ms", "p99")
        rows.append(
            (f"intake HTTP p99 ms at {rate}/s (baseline: bare endpoint)", b, m, ratio(m, b), "")
        )
    imp = ph.get("import", {})
    if imp.get("available") is False or "skipped" in imp or not imp:
        why = (
            f"not available: {imp['not_available']}"
            if imp.get("not_available")
            else f"skipped: {imp.get('skipped') or 'not run'}"
        )
        rows.append(("CSV import: time to accept s", None, why, None, "≤ 60"))
    else:
        accept = imp.get("time_to_accept_s")
        st = imp.get("status")
        if accept is None and not st:
            accept = imp.get("incomplete")
        elif accept is None:
            accept = (
                f"{st.get('status')} ({st.get('accepted')} of {imp.get('rows')} accepted"
                f"{', failed: ' + str(st.get('error')) if st.get('error') else ''})"
            )
        rows.append(
            (f"import of {imp.get('rows')} rows: time to accept s", None, accept, None, "≤ 60")
        )
        routed = imp.get("time_to_all_routed_s")
        if routed is None and imp.get("routed") is not None:
            routed = f"not all: {imp.get('routed')} of {imp.get('accepted_rows')} routed"
        rows.append(("import: time until all routed s", None, routed, None, ""))
        live = _get(imp, "live", "speed_to_lead_ms", "p99")
        rows.append(
            (
                "live speed-to-lead p99 ms during import (baseline: Kafka hop)",
                _get(hop50, "p99"),
                live,
                ratio(live, _get(hop50, "p99")),
                "≤ 2000",
            )
        )
    idle = _get(ph, "idle", "system_pct_of_one_core")
    rows.append(("idle CPU, % of one core (broker + services)", None, idle, None, "≤ 25"))
    so = ph.get("scale_out", {})
    rows.append(
        (
            "throughput leads/s: two vs one process of scoring+routing",
            _get(so, "one_process", "assigned_per_s"),
            _get(so, "two_processes", "assigned_per_s"),
            so.get("ratio_two_to_one"),
            "> 1x",
        )
    )
    return rows


def _met(target: str, measured: Any, rat: Any) -> str:
    """✓ / ✗ against the issue's target where it is a plain bound, else blank."""
    if not target or not isinstance(measured, (int, float)) or isinstance(measured, bool):
        return "" if not target else "—"
    ok = True
    for part in target.split(" and "):
        part = part.split(" (")[0].strip()
        op, _, num = part.partition(" ")
        against = rat if num.endswith("x") else measured
        try:
            bound = float(num.rstrip("x").replace(",", ""))
        except ValueError:
            return ""
        if against is None:
            return "—"
        ok = ok and {"≤": against <= bound, "≥": against >= bound, ">": against > bound}.get(
            op, True
        )
    return "✓" if ok else "✗"


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def render_summary(results: list[dict[str, Any]]) -> str:
    lines = []
    for r in results:
        lines.append(
            f"\n### {r['database']} ({'quick' if r.get('quick') else 'full'}), run {r['run_id']}, "
            f"{r['at']}, {r.get('elapsed_s')} s\n"
        )
        lines.append("| figure | baseline | measured | ratio | target | met |")
        lines.append("|---|---|---|---|---|---|")
        for figure, base, measured, rat, target in summary_rows(r):
            lines.append(
                f"| {figure} | {_fmt(base)} | {_fmt(measured)} | "
                f"{_fmt(rat) + 'x' if rat is not None else '—'} | {target} | "
                f"{_met(target, measured, rat)} |"
            )
        usage = r.get("phase_resources", {})
        if usage:
            procs = sorted({p for u in usage.values() for p in u.get("processes", {})})
            lines.append("\nCPU s (peak RSS MB) per process and phase:\n")
            lines.append("| phase | s | " + " | ".join(procs) + " |")
            lines.append("|---|---|" + "---|" * len(procs))
            for name, u in usage.items():
                cells = []
                for p in procs:
                    v = u.get("processes", {}).get(p)
                    cells.append(f"{_fmt(v['cpu_s'])} ({_fmt(v['peak_rss_mb'])})" if v else "")
                lines.append(f"| {name} | {_fmt(u.get('seconds'))} | " + " | ".join(cells) + " |")
        problems = {**r.get("errors", {})}
        for name, ph in r.get("phases", {}).items():
            if isinstance(ph, dict) and "skipped" in ph:
                problems[name] = f"skipped: {ph['skipped']}"
        if problems:
            lines.append("\nNot measured:\n")
            lines.extend(f"- {k}: {v}" for k, v in problems.items())
        if r.get("service_log_errors"):
            lines.append(
                f"\nErrors in service logs: {', '.join(r['service_log_errors'])} "
                f"(see {r.get('logs')})"
            )
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------


def _sigterm(*_: Any) -> None:
    raise KeyboardInterrupt  # unwinds through every finally: services stop, databases drop


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short phases (≤ ~5 min in all)")
    parser.add_argument(
        "--database", default="sqlite,postgres", help="sqlite, postgres or both (comma-separated)"
    )
    parser.add_argument("--only", default=",".join(PHASES), help="phases to run (comma-separated)")
    parser.add_argument(
        "--profile",
        default="",
        help="services to record with py-spy during the 50 leads/s phase (e.g. routing,scoring)",
    )
    parser.add_argument("--budget-min", type=float, help="time budget per database, minutes")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.budget_min:
        plan = Plan(**{**plan.__dict__, "budget_s": args.budget_min * 60})
    only = tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = set(only) - set(PHASES)
    databases = [d.strip() for d in args.database.split(",") if d.strip()]
    profile = tuple(p.strip() for p in args.profile.split(",") if p.strip())
    bad_db = set(databases) - {"sqlite", "postgres"}
    bad_svc = set(profile) - {s.name for s in SERVICES}
    if unknown or bad_db or bad_svc:
        parser.error(f"unknown: {sorted(unknown | bad_db | bad_svc)}")
    if profile and "speed_to_lead" not in only:
        parser.error("--profile records during the speed_to_lead phase; include it in --only")
    signal.signal(signal.SIGTERM, _sigterm)
    RESULTS.mkdir(exist_ok=True)
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    run_id = secrets.token_hex(3)
    results = []
    for database in databases:
        print(f"== {database}: run {run_id} ({'quick' if args.quick else 'full'})", flush=True)
        try:
            r = asyncio.run(run_database(database, plan, only, profile, run_id, args.quick))
        except KeyboardInterrupt:
            print("interrupted: the system was stopped and its databases dropped", flush=True)
            return 130
        out = RESULTS / f"bench-{stamp}-{database}.json"
        out.write_text(json.dumps(r, indent=2, default=str) + "\n")
        print(f"== {database}: {r.get('elapsed_s')} s, written to {out}", flush=True)
        results.append(r)
    text = (
        f"# leadflow bench {stamp} (run {run_id})\n\nEach row: the baseline and the measured "
        "figure from the same run; ratio = measured / baseline.\n" + render_summary(results)
    )
    summary = RESULTS / f"bench-{stamp}-summary.md"
    summary.write_text(text)
    print(text)
    print(f"summary written to {summary}")
    # Phases that failed or were cut short are in the summary; the exit status says only
    # whether anything could be measured at all.
    return 1 if all("startup" in r["errors"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
