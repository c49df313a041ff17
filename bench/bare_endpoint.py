"""Baseline (b): the barest FastAPI endpoint that only produces to Kafka.

``POST /v1/leads`` takes a JSON object, sends it to ``BENCH_TOPIC`` keyed by a new id and
answers 202 with that id once the broker acknowledged it (``acks=all``) — the durability
the real endpoint gives with its outbox. Served by uvicorn exactly as the services are
(same flags; uvloop/httptools when installed), on 127.0.0.1:

    BENCH_BOOTSTRAP=127.0.0.1:9092 BENCH_TOPIC=bench.bare \
        .venv/bin/python -m uvicorn --app-dir bench bare_endpoint:app --port 8099
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI

TOPIC = os.environ.get("BENCH_TOPIC", "bench.bare")
_producer: dict[str, AIOKafkaProducer] = {}


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    producer = AIOKafkaProducer(
        bootstrap_servers=os.environ["BENCH_BOOTSTRAP"], acks="all", linger_ms=1
    )
    await producer.start()
    _producer["p"] = producer
    try:
        yield
    finally:
        await producer.stop()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/leads", status_code=202)
async def post_lead(lead: dict[str, Any]) -> dict[str, str]:
    lead_id = str(uuid.uuid4())
    await _producer["p"].send_and_wait(TOPIC, json.dumps(lead).encode(), key=lead_id.encode())
    return {"lead_id": lead_id, "status": "accepted"}


@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
