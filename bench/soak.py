"""Soak (issue 9, scenario 8): a steady rate for a long time; memory and lag must stay flat.

``make soak`` (defaults: 10 minutes at 50 leads/s, the embedded defaults: Tansu + SQLite;
``SOAK_ARGS="--database postgres"`` for PostgreSQL). Every ``--sample-s`` it records each
process's RSS, every consumer group's lag and the speed-to-lead of the leads assigned since
the last sample; at the end it fits a line through each process's RSS over the second half
(after warm-up) and reports the slope in MB per minute, the lag trend, and the ledger
(every accepted lead assigned exactly once). The verdict: RSS slope ≤ ``--max-rss-slope``
MB/min for every service process (the embedded broker keeps every message in memory, so
its growth is reported but not judged), the lag at the end of the load no higher than
``--max-end-lag``, and the ledger balanced. Results
go to bench/results/soak-<time>.json. Bounded in time: the run, then at most 120 s of drain.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).parent))

from common import (
    AssignmentWatcher,
    mql_lead,
    new_database_name,
    percentiles,
    pg_execute,
    pg_url,
)
from flamegraph import py_spy_binary
from loadgen import HttpPool, Response, open_loop

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.system import SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.ledger import consumer_groups, group_lag, read_ledger
from leadflow_shared.settings import DEV_JWT_SECRET

RESULTS = Path(__file__).parent / "results"


def outbox_backlog(data_dir: Path) -> dict[str, int | None]:
    """Committed outbox rows not yet marked sent, per service (SQLite files only): events
    the consumers cannot see yet, which consumer lag does not show."""
    out: dict[str, int | None] = {}
    for service in SERVICES:
        path = data_dir / f"{service.name}.sqlite3"
        if not path.exists():
            continue
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
                row = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
                out[service.name] = int(row[0])
        except sqlite3.Error:
            out[service.name] = None
    return out


def slope_per_min(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, value) points, per minute."""
    if len(points) < 3:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


async def soak(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    env: dict[str, str] = {"LEADFLOW_LOG_LEVEL": "WARNING"}
    databases: list[str] = []
    if args.database == "postgres":
        for service in SERVICES:
            name = new_database_name(f"soak_{service.env_suffix.lower()}")
            databases.append(name)
            env[f"DATABASE_URL_{service.env_suffix}"] = pg_url(name)
        await pg_execute([f'CREATE DATABASE "{db}"' for db in databases])
    system = System(
        data_dir=data_dir,
        ports={s.name: free_port() for s in SERVICES},
        broker_port=free_port(),
        env=env,
    )
    admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin", ttl=timedelta(hours=3))
    web = mint_token(DEV_JWT_SECRET, sub="website", role="integration", ttl=timedelta(hours=3))
    samples: list[dict[str, Any]] = []
    try:
        await asyncio.to_thread(system.start, ready_timeout_s=120)
        urls = {s.name: system.url(s.name) for s in SERVICES}
        await asyncio.to_thread(load_demo, urls, admin, data_dir)
        await asyncio.to_thread(lift_daily_capacity, urls["routing"], admin)
        processes = {name: psutil.Process(svc.process.pid) for name, svc in system.services.items()}
        if system.broker is not None and system.broker.process is not None:
            processes["broker"] = psutil.Process(system.broker.process.pid)
        watcher = AssignmentWatcher(system.bootstrap_servers, fetch_max_wait_ms=5)
        await watcher.start()
        pool = HttpPool(urls["lead-intake"], size=64)
        run = secrets.token_hex(3)
        accepted: dict[str, float] = {}
        accepted_wall: dict[str, float] = {}
        headers = {"Authorization": f"Bearer {web}"}

        async def send(i: int) -> Response:
            return await pool.post_json("/v1/leads", mql_lead(i, run, "Soak"), headers)

        def on_response(i: int, response: Response, now: float) -> None:
            if 200 <= response.status < 300:
                lead_id = str(response.json()["lead_id"])
                accepted[lead_id] = now
                accepted_wall[lead_id] = time.time()

        started = time.perf_counter()
        stop = asyncio.Event()

        async def sampler() -> None:
            seen: set[str] = set()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=args.sample_s)
                except TimeoutError:
                    pass
                now = time.perf_counter()
                rss = {}
                for name, proc in processes.items():
                    try:
                        rss[name] = round(proc.memory_info().rss / 2**20, 1)
                    except psutil.Error:
                        rss[name] = None
                # Each group's own topics, as its service's metrics name them (asking every
                # group about every topic costs the local broker enough to skew the soak).
                groups: dict[str, set[str]] = {}
                async with httpx.AsyncClient(timeout=5) as client:
                    for svc in system.services.values():
                        with contextlib.suppress(httpx.HTTPError):
                            metrics = (await client.get(f"{svc.url}/metrics")).text
                            for group, topics in consumer_groups(metrics).items():
                                groups.setdefault(group, set()).update(topics)
                lag = await group_lag(system.bootstrap_servers, groups)
                backlog = await asyncio.to_thread(outbox_backlog, data_dir)
                fresh = [
                    (watcher.first_assigned[k] - accepted[k]) * 1000
                    for k in list(accepted)
                    if k in watcher.first_assigned and k not in seen
                ]
                decided = [
                    (watcher.decided_at[k] - accepted_wall[k]) * 1000
                    for k in list(accepted_wall)
                    if k in watcher.decided_at and k not in seen
                ]
                seen.update(k for k in accepted if k in watcher.first_assigned)
                samples.append(
                    {
                        "t_s": round(now - started, 1),
                        "rss_mb": rss,
                        "lag": lag,
                        "total_lag": sum(v or 0 for v in lag.values()),
                        "outbox_unsent": backlog,
                        "accepted": len(accepted),
                        "assigned": len(watcher.first_assigned),
                        "speed_to_lead_ms": percentiles(fresh),
                        # By routing's clock (the assignment's ce_time): the system's part.
                        "decided_after_ms": percentiles(decided),
                    }
                )
                last = samples[-1]
                print(
                    f"soak t={last['t_s']:>6}s accepted={last['accepted']} "
                    f"assigned={last['assigned']} lag={last['total_lag']} "
                    f"unsent={sum(v for v in backlog.values() if v)} "
                    f"p50={last['speed_to_lead_ms'].get('p50')} ms "
                    f"(decided p50={last['decided_after_ms'].get('p50')} ms) "
                    f"rss={sum(v or 0 for v in rss.values()):.0f} MB",
                    flush=True,
                )

        async def profile() -> None:
            """py-spy (raw stacks) on ``--profile`` services for 20 s at ``--profile-at-s``."""
            await asyncio.sleep(args.profile_at_s)
            binary = py_spy_binary()
            if binary is None:
                return
            runs = []
            for name in args.profile.split(","):
                out = RESULTS / f"soak-profile-{name}.txt"
                runs.append(
                    await asyncio.create_subprocess_exec(
                        binary,
                        "record",
                        "--pid",
                        str(processes[name].pid),
                        "--duration",
                        "20",
                        "--rate",
                        "100",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "--output",
                        str(out),
                        stdout=asyncio.subprocess.DEVNULL,
                        stderr=asyncio.subprocess.DEVNULL,
                    )
                )
            await asyncio.gather(*(r.wait() for r in runs))

        sampling = asyncio.create_task(sampler())
        profiling = asyncio.create_task(profile()) if args.profile_at_s else None
        load = await open_loop(args.rate, args.minutes * 60, send, on_response)
        drained = await watcher.wait_for(set(accepted), timeout_s=120)
        stop.set()
        await sampling
        if profiling is not None:
            profiling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await profiling
        await pool.close()
        await watcher.stop()
        ledger = (await read_ledger(system.bootstrap_servers)).check(set(accepted))
        half = samples[len(samples) // 2 :]
        slopes = {
            name: slope_per_min(
                [(s["t_s"], s["rss_mb"][name]) for s in half if s["rss_mb"].get(name) is not None]
            )
            for name in processes
        }
        lag_slope = slope_per_min([(s["t_s"], s["total_lag"]) for s in half])
        during_load = [s for s in samples if s["t_s"] <= args.minutes * 60]
        end_lag = during_load[-1]["total_lag"] if during_load else None
        all_ms = [
            (watcher.first_assigned[k] - accepted[k]) * 1000
            for k in accepted
            if k in watcher.first_assigned
        ]
        # The embedded broker keeps every message in memory (Tansu's memory storage), so its
        # RSS grows with the traffic by design; it is reported, not judged.
        judged = {k: v for k, v in slopes.items() if k != "broker"}
        verdict = {
            "rss_flat": all(v is not None and v <= args.max_rss_slope for v in judged.values()),
            "lag_flat": end_lag is not None and end_lag <= args.max_end_lag,
            "ledger_ok": bool(ledger["ok"]) and drained,
        }
        return {
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": args.database,
            "rate_per_s": args.rate,
            "minutes": args.minutes,
            "load": load.summary(),
            "speed_to_lead_ms": percentiles(all_ms, missing=len(accepted) - len(all_ms)),
            "rss_slope_mb_per_min_second_half": {
                k: None if v is None else round(v, 3) for k, v in slopes.items()
            },
            "total_lag_slope_per_min_second_half": None
            if lag_slope is None
            else round(lag_slope, 2),
            "lag_at_end_of_load": end_lag,
            "ledger": ledger,
            "drained_within_120s": drained,
            "verdict": {**verdict, "ok": all(verdict.values())},
            "samples": samples,
        }
    finally:
        await asyncio.to_thread(system.stop)
        if databases:
            await pg_execute([f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in databases])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=50, help="leads per second")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sample-s", type=float, default=10)
    parser.add_argument("--max-rss-slope", type=float, default=1.0, help="MB per minute")
    parser.add_argument("--max-end-lag", type=int, default=500)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--profile-at-s",
        type=float,
        default=0,
        help="record --profile services with py-spy for 20 s at this second (raw stacks in "
        "bench/results/soak-profile-<service>.txt)",
    )
    parser.add_argument("--profile", default="scoring,routing", help="services to profile")
    args = parser.parse_args()
    data_dir = Path(args.data_dir or f"var/soak-{secrets.token_hex(3)}").resolve()
    result = asyncio.run(soak(args, data_dir))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"soak-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{args.database}.json"
    out.write_text(json.dumps(result, indent=2))
    summary = {k: v for k, v in result.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    print(f"written: {out}")
    return 0 if result["verdict"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
