"""Baseline (c): a pass-through consumer applying events to PostgreSQL idempotently.

The yardstick of issue 5: one Python process reads a topic from the beginning and, per
fetched batch, in **one transaction** records the batch's event ids with
``INSERT … ON CONFLICT DO NOTHING RETURNING`` and upserts the rows of the new ones with one
``executemany``, then commits the offsets. ``--per-message`` does the same work with one
transaction per message. Prints one JSON line: events, seconds, events/s, CPU ms per event.

    .venv/bin/python bench/pg_batch_consumer.py --bootstrap 127.0.0.1:9092 \
        --topic bench.pg --dsn postgresql://postgres@127.0.0.1:5432/db --count 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS processed_events (event_id text PRIMARY KEY)",
    """CREATE TABLE IF NOT EXISTS leads (
        lead_id text PRIMARY KEY, email text NOT NULL, company text, score int NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now())""",
]
DEDUP = (
    "INSERT INTO processed_events (event_id) SELECT unnest($1::text[]) "
    "ON CONFLICT DO NOTHING RETURNING event_id"
)
UPSERT = (
    "INSERT INTO leads (lead_id, email, company, score) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (lead_id) DO UPDATE SET email = excluded.email, company = excluded.company, "
    "score = excluded.score, updated_at = now()"
)


def _row(value: bytes | None) -> tuple[str, str, str | None, int]:
    data: dict[str, Any] = json.loads(value or b"{}")
    return (data["lead_id"], data["email"], data.get("company"), int(data.get("score", 0)))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(args.dsn, timeout=10)
    for statement in SCHEMA:
        await conn.execute(statement)
    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=f"bench-pg-{secrets.token_hex(3)}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=args.fetch_max_wait_ms,
        max_partition_fetch_bytes=4 * 2**20,
    )
    await consumer.start()
    seen = applied = batches = 0
    first: float | None = None
    cpu_first = 0.0
    deadline = time.monotonic() + args.timeout
    try:
        while seen < args.count and time.monotonic() < deadline:
            fetched = await consumer.getmany(timeout_ms=200, max_records=args.max_records)
            messages = [m for ms in fetched.values() for m in ms]
            if not messages:
                continue
            if first is None:
                first, cpu_first = time.perf_counter(), time.process_time()
            if args.per_message:
                for m in messages:
                    async with conn.transaction():
                        event_id = dict(m.headers)["ce_id"].decode()
                        if await conn.fetch(DEDUP, [event_id]):
                            await conn.execute(UPSERT, *_row(m.value))
                            applied += 1
                    await consumer.commit()
            else:
                async with conn.transaction():
                    ids = [dict(m.headers)["ce_id"].decode() for m in messages]
                    new = {r[0] for r in await conn.fetch(DEDUP, ids)}
                    rows = [
                        _row(m.value)
                        for m, event_id in zip(messages, ids, strict=True)
                        if event_id in new
                    ]
                    if rows:
                        await conn.executemany(UPSERT, rows)
                    applied += len(rows)
                await consumer.commit()
            batches += 1
            seen += len(messages)
    finally:
        await consumer.stop()
        await conn.close()
    seconds = time.perf_counter() - first if first is not None else 0.0
    cpu = time.process_time() - cpu_first if first is not None else 0.0
    return {
        "mode": "per_message" if args.per_message else "batch",
        "events": seen,
        "applied": applied,
        "batches": batches,
        "seconds": round(seconds, 3),
        "events_per_s": round(seen / seconds, 1) if seconds else None,
        "cpu_ms_per_event": round(cpu * 1000 / seen, 4) if seen else None,
        "complete": seen >= args.count,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--per-message", action="store_true")
    parser.add_argument("--max-records", type=int, default=1000)
    parser.add_argument("--fetch-max-wait-ms", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    result = asyncio.run(run(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0 if result["complete"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
