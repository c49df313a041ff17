"""The three baselines every figure is divided by, measured in the same run:

(a) a bare aiokafka produce → consume hop through the same broker;
(b) a bare FastAPI endpoint that only produces to Kafka (``bare_endpoint.py``);
(c) a pass-through batch consumer applying events to PostgreSQL (``pg_batch_consumer.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from common import (
    Monitor,
    new_database_name,
    percentiles,
    pg_execute,
    pg_url,
)
from loadgen import HttpPool, Response, closed_loop, open_loop

from leadflow_shared.broker import free_port
from leadflow_shared.messaging import create_topics

BENCH_DIR = Path(__file__).parent


async def kafka_hop(
    bootstrap: str, rate: float, duration_s: float, fetch_max_wait_ms: int
) -> dict[str, Any]:
    """(a) Produce → consume, open loop at ``rate``/s, with the fetch wait of the services on
    the speed-to-lead path. Latency from before ``send`` to the consumer's fetch."""
    topic = f"bench.hop.{secrets.token_hex(3)}"
    await create_topics(bootstrap, [topic], partitions=3)
    # Partitions assigned by hand (no group join to wait for); the fetch path is the same.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=fetch_max_wait_ms
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    count = max(1, int(rate * duration_s))
    sent: dict[bytes, float] = {}
    latencies: list[float] = []

    async def consume() -> None:
        while len(latencies) < count:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for m in messages:
                    if m.key in sent:
                        latencies.append((now - sent.pop(m.key)) * 1000)

    task: asyncio.Task[None] | None = None
    try:
        deadline = time.monotonic() + 10
        while not (partitions := consumer.partitions_for_topic(topic) or set()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partitions for {topic} after 10 s")
            await consumer._client.force_metadata_update()
            await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        for tp in tps:
            await consumer.position(tp)
        task = asyncio.create_task(consume())
        start = time.perf_counter()
        for i in range(count):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            key = f"k{i}".encode()
            sent[key] = time.perf_counter()
            await producer.send(topic, b'{"lead_id": "x"}', key=key)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), timeout=15)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await producer.stop()
        await consumer.stop()
    return {
        "rate_per_s": rate,
        "fetch_max_wait_ms": fetch_max_wait_ms,
        "latency_ms": percentiles(latencies, missing=count - len(latencies)),
    }


@contextlib.asynccontextmanager
async def bare_endpoint_server(
    bootstrap: str, log_dir: Path, monitor: Monitor
) -> AsyncIterator[str]:
    """(b) Start ``bare_endpoint.py`` under uvicorn on a free 127.0.0.1 port; yields its URL."""
    topic = f"bench.bare.{secrets.token_hex(3)}"
    await create_topics(bootstrap, [topic], partitions=3)
    port = free_port()
    log = (log_dir / "bare-endpoint.log").open("ab")
    # Popen returns at once (the child runs on its own), as System does for the services.
    process = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(BENCH_DIR),
            "bare_endpoint:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**os.environ, "BENCH_BOOTSTRAP": bootstrap, "BENCH_TOPIC": topic},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    pool = HttpPool(url, size=4, timeout_s=2)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"bare endpoint exited; see {log_dir / 'bare-endpoint.log'}")
            with contextlib.suppress(Exception):
                if (await pool.get("/readyz")).status == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError("bare endpoint not ready within 30 s")
            await asyncio.sleep(0.2)
        monitor.track("bare-endpoint", process.pid)
        yield url
    finally:
        monitor.untrack("bare-endpoint")
        await pool.close()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def http_capacity(
    url: str,
    path: str,
    make_body: Any,
    headers: dict[str, str],
    *,
    concurrency: int,
    duration_s: float,
) -> dict[str, Any]:
    """Closed loop at ``concurrency``: requests/s with 2xx, and their latency."""
    pool = HttpPool(url, size=concurrency, timeout_s=30)
    try:

        async def send(i: int) -> Response:
            return await pool.post_json(path, make_body(i), headers)

        result = await closed_loop(concurrency, duration_s, send)
    finally:
        await pool.close()
    return {
        "concurrency": concurrency,
        **result.summary(),
        "latency_ms": percentiles(result.latencies_ms),
    }


async def http_latency(
    url: str,
    path: str,
    make_body: Any,
    headers: dict[str, str],
    *,
    rate: float,
    duration_s: float,
) -> dict[str, Any]:
    """Open loop at ``rate``/s: latency from the scheduled start to the 2xx."""
    pool = HttpPool(url, size=256, timeout_s=30)
    try:

        async def send(i: int) -> Response:
            return await pool.post_json(path, make_body(i), headers)

        result = await open_loop(rate, duration_s, send)
    finally:
        await pool.close()
    return {
        "rate_per_s": rate,
        **result.summary(),
        "latency_ms": percentiles(result.latencies_ms, missing=result.errors + result.non_2xx),
    }


async def pg_batch_consumer(
    bootstrap: str, count: int, per_message_count: int, log_dir: Path, timeout_s: float
) -> dict[str, Any]:
    """(c) Produce ``count`` lead events, then let ``pg_batch_consumer.py`` apply them to a
    fresh PostgreSQL database, batch-wise and (on a smaller count) one by one."""
    database = new_database_name("passthrough")
    topic = f"bench.pg.{secrets.token_hex(3)}"
    await create_topics(bootstrap, [topic], partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(count):
            lead_id = str(uuid.uuid4())
            value = json.dumps(
                {
                    "lead_id": lead_id,
                    "email": f"pg-{i}@bigcorp.com",
                    "company": "BigCorp",
                    "score": i % 100,
                }
            ).encode()
            futures.append(
                await producer.send(
                    topic,
                    value,
                    key=lead_id.encode(),
                    headers=[
                        ("ce_id", str(uuid.uuid4()).encode()),
                        ("ce_type", b"lead.captured"),
                    ],
                )
            )
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    await pg_execute([f'CREATE DATABASE "{database}"'])
    out: dict[str, Any] = {"database": "PostgreSQL", "events_offered": count}
    try:
        for mode, n in (("batch", count), ("per_message", per_message_count)):
            args = [
                sys.executable,
                str(BENCH_DIR / "pg_batch_consumer.py"),
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
                "--dsn",
                pg_url(database, "postgresql"),
                "--count",
                str(n),
                "--timeout",
                str(timeout_s),
            ]
            if mode == "per_message":
                args += ["--per-message", "--max-records", "100"]
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            try:
                stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s + 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                out[mode] = {"error": f"timed out after {timeout_s + 30}s"}
                continue
            if stderr:
                (log_dir / f"pg-consumer-{mode}.log").write_bytes(stderr)
            try:
                out[mode] = json.loads(stdout.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                out[mode] = {"error": f"exit {proc.returncode}: {stderr.decode()[-400:]}"}
            if mode == "batch":  # per-message starts afresh on the same events
                with contextlib.suppress(Exception):
                    await pg_execute(
                        ["TRUNCATE processed_events, leads"], pg_url(database, "postgresql")
                    )
    finally:
        await pg_execute([f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'])
    return out
