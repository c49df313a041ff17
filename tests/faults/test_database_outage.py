"""Fault scenario 6: the database becomes unreachable while leads flow.

A System of its own (embedded broker, a fresh PostgreSQL database per service) where
lead-intake reaches PostgreSQL through one fault-injecting TCP proxy and scoring and
routing through another (``tests/faults/tcp_proxy.py``). While 500 MQL leads are posted at
20/s, scoring's and routing's proxy is cut for 10 s (every connection closed, new ones
refused) and, overlapping, intake's for 8 s. Checked:

- the API answers 503 ``database_unavailable`` with ``Retry-After``, never a 500 (the
  stream retries with the same ``Idempotency-Key``; a probe reads routing meanwhile);
- ``/readyz`` of the cut services says ``database: false`` during the cut;
- consumers pause without dead-lettering: nothing in any ``<service>.dlq``, scoring logged
  its pause at WARNING;
- everything resumes by itself once the proxies heal, and the ledger balances (every
  accepted lead exactly one SDR assignment in routing's history and on the broker, the
  console's funnel agrees).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.system import DLQ_TOPICS, SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.settings import DEV_JWT_SECRET
from tests.faults.journey import Stream, check_ledger
from tests.faults.tcp_proxy import TcpProxy
from tests.helpers import ADMIN

LEADS = 500
RATE_PER_S = 20
PIPELINE_CUT_AT_S, PIPELINE_CUT_S = 5.0, 10.0  # scoring and routing
INTAKE_CUT_AT_S, INTAKE_CUT_S = 7.0, 8.0  # lead-intake
BEHIND_INTAKE_PROXY = ("lead-intake",)
BEHIND_PIPELINE_PROXY = ("scoring", "routing")


@dataclass
class OutageSystem:
    system: System
    intake_proxy: TcpProxy
    pipeline_proxy: TcpProxy
    data_dir: Path
    figures: dict[str, Any] = field(default_factory=dict)


async def _admin(dsn: str, statements: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def outage_system(
    infrastructure: tuple[str | None, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OutageSystem]:
    bootstrap, admin_dsn = infrastructure
    if bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs a broker of its own (a shared one has the main consumer groups)")
    pg = urlsplit(admin_dsn)
    intake_proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432).start()
    pipeline_proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432).start()
    run = secrets.token_hex(4)
    databases = {s.name: f"leadflow_dbout_{run}_{s.env_suffix.lower()}" for s in SERVICES}
    asyncio.run(_admin(admin_dsn, [f'CREATE DATABASE "{db}"' for db in databases.values()]))
    credentials = pg.netloc.rsplit("@", 1)[0] + "@" if "@" in pg.netloc else ""
    env: dict[str, str] = {}
    for s in SERVICES:
        port = pg.port or 5432
        if s.name in BEHIND_INTAKE_PROXY:
            port = intake_proxy.port
        elif s.name in BEHIND_PIPELINE_PROXY:
            port = pipeline_proxy.port
        env[f"DATABASE_URL_{s.env_suffix}"] = (
            f"postgresql+asyncpg://{credentials}{pg.hostname}:{port}/{databases[s.name]}"
        )
    env.update(
        {
            "LEADFLOW_ROUTING_TIMER_INTERVAL_S": "0.5",
            "LEADFLOW_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "LEADFLOW_LOG_LEVEL": "INFO",
        }
    )
    data_dir: Path = tmp_path_factory.mktemp("dboutage")
    system = System(
        data_dir=data_dir,
        ports={s.name: free_port() for s in SERVICES},
        broker_port=free_port(),
        env=env,
        partitions=4,
    )
    try:
        system.start(ready_timeout_s=120)
        admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin")
        urls = {s.name: system.url(s.name) for s in SERVICES}
        load_demo(urls, admin, data_dir)
        lift_daily_capacity(urls["routing"], admin)
        yield OutageSystem(system, intake_proxy, pipeline_proxy, data_dir)
    finally:
        system.stop()
        intake_proxy.close()
        pipeline_proxy.close()
        asyncio.run(
            _admin(
                admin_dsn,
                [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in databases.values()],
            )
        )


async def _dead_letters(bootstrap: str) -> dict[str, int]:
    """Messages in every ``<service>.dlq`` topic (end offsets; they start empty)."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await reader.start()
    try:
        await reader._client.force_metadata_update()
        out: dict[str, int] = {}
        for topic in DLQ_TOPICS:
            tps = [TopicPartition(topic, p) for p in reader.partitions_for_topic(topic) or ()]
            ends = await reader.end_offsets(tps) if tps else {}
            out[topic] = sum(ends.values())
        return out
    finally:
        await reader.stop()


async def _probe_during_cut(system: System, lead_id: str | None) -> dict[str, Any]:
    """While both proxies are cut: every cut service's /readyz and a routing read."""
    out: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for name in (*BEHIND_INTAKE_PROXY, *BEHIND_PIPELINE_PROXY):
            r = await client.get(f"{system.url(name)}/readyz")
            out[f"readyz {name}"] = (r.status_code, r.json()["checks"]["database"])
        r = await client.get(
            f"{system.url('routing')}/v1/assignments/{lead_id or 'none'}", headers=ADMIN
        )
        out["routing read"] = (r.status_code, r.json().get("error"), r.headers.get("retry-after"))
    return out


def _warnings(log: Path, message: str) -> int:
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        if message in line:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            count += record.get("level") == "warning"
    return count


async def test_database_outage_answers_503_pauses_consumers_and_resumes(
    outage_system: OutageSystem,
) -> None:
    system = outage_system.system
    started = time.monotonic()
    stream = Stream(system.url("lead-intake"), secrets.token_hex(3))
    posting = asyncio.create_task(stream.run_for(LEADS, RATE_PER_S))
    timeline: list[tuple[float, str]] = []

    def mark(what: str) -> None:
        timeline.append((round(time.monotonic() - started, 1), what))

    await asyncio.sleep(PIPELINE_CUT_AT_S)
    await asyncio.to_thread(outage_system.pipeline_proxy.cut)
    mark("scoring+routing cut")
    await asyncio.sleep(INTAKE_CUT_AT_S - PIPELINE_CUT_AT_S)
    await asyncio.to_thread(outage_system.intake_proxy.cut)
    mark("intake cut")
    await asyncio.sleep(2)
    probe = await _probe_during_cut(system, stream.accepted[0] if stream.accepted else None)
    mark("probed")
    await asyncio.sleep(PIPELINE_CUT_AT_S + PIPELINE_CUT_S - (time.monotonic() - started))
    await asyncio.to_thread(outage_system.pipeline_proxy.heal)
    mark("scoring+routing healed")
    await asyncio.sleep(INTAKE_CUT_AT_S + INTAKE_CUT_S - (time.monotonic() - started))
    await asyncio.to_thread(outage_system.intake_proxy.heal)
    mark("intake healed")
    await posting
    mark("all posted")

    ledger = await check_ledger(
        system.bootstrap_servers, system.url("routing"), system.url("console"), stream.accepted
    )
    mark("ledger balanced")
    dead_letters = await _dead_letters(system.bootstrap_servers)
    logs = outage_system.data_dir / "logs"
    paused = {
        name: _warnings(logs / f"{name}.log", "database unreachable; consumer paused")
        for name in BEHIND_PIPELINE_PROXY
    }
    figures = {
        "timeline": timeline,
        "probe during the cut": probe,
        "accepted": len(stream.accepted),
        "503 answers": stream.unavailable,
        "503 codes": stream.unavailable_codes,
        "503 without Retry-After": stream.without_retry_after,
        "connection errors": stream.errors,
        "other refusals": stream.refused,
        "connections cut": {
            "intake": outage_system.intake_proxy.cut_connections,
            "scoring+routing": outage_system.pipeline_proxy.cut_connections,
        },
        "consumer pause warnings": paused,
        "dead letters": dead_letters,
        "ledger": ledger,
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures, indent=1, default=str))

    assert not stream.refused, f"answers other than 2xx/503: {stream.refused}"
    assert len(stream.accepted) == LEADS
    assert stream.unavailable > 0, "the intake cut produced no 503"
    assert set(stream.unavailable_codes) == {"database_unavailable"}, stream.unavailable_codes
    assert stream.without_retry_after == 0
    for name in (*BEHIND_INTAKE_PROXY, *BEHIND_PIPELINE_PROXY):
        assert probe[f"readyz {name}"] == (503, False), probe
    assert probe["routing read"][:2] == (503, "database_unavailable"), probe
    assert probe["routing read"][2], probe
    assert paused["scoring"] >= 1, "scoring never paused (did its consumer see the cut?)"
    assert not any(dead_letters.values()), dead_letters
    assert ledger["console"]["assigned"] >= LEADS, ledger
