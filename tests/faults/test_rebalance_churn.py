"""Fault scenario 3: rebalance churn while leads flow.

A System of its own (PostgreSQL databases of its own, the embedded broker, 4 partitions
per topic), not supervised: the churn itself starts and stops processes. While 600 MQL
leads are posted at 20/s, routing and scoring replicas (same database, same consumer
group) are added and removed again and again, rolling (``System.start_replica``, then
``stop_replica`` of the previous one), so each group rebalances every few seconds with
batches in hand.

Checked, per lead:
- order: on ``leads.captured``, ``leads.scored`` and ``leads.routing`` the lead's events
  sit in one partition with non-decreasing event times, and causally: lead.captured,
  then lead.scored, then lead.assigned;
- scored exactly once (one distinct ``lead.scored`` event id: a batch redelivered after a
  rebalance is deduplicated, not scored again);
- the ledger: exactly one SDR decision in routing's history and on the broker, the
  console's funnel agrees.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.system import SERVICES, RunningService, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.events import CloudEvent, EnvelopeError
from leadflow_shared.settings import DEV_JWT_SECRET
from tests.faults.journey import Stream, check_ledger
from tests.helpers import pg_admin, read_topic

LEADS = 600
RATE_PER_S = 20  # 30 s of leads: a replica takes ~10 s to start on this machine
CHURNED = ("routing", "scoring")
HOLD_S = 1.0  # between a replica being ready and the previous one being stopped


@pytest.fixture
def churn_system(
    infrastructure: tuple[str | None, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    bootstrap, admin_dsn = infrastructure
    if bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("needs a broker of its own (a shared one has the main consumer groups)")
    run = secrets.token_hex(4)
    databases = {s.name: f"leadflow_churn_{run}_{s.env_suffix.lower()}" for s in SERVICES}
    asyncio.run(pg_admin(admin_dsn, [f'CREATE DATABASE "{db}"' for db in databases.values()]))
    base = admin_dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    env = {f"DATABASE_URL_{s.env_suffix}": f"{base}/{databases[s.name]}" for s in SERVICES}
    env.update(
        {
            "LEADFLOW_ROUTING_TIMER_INTERVAL_S": "0.5",
            "LEADFLOW_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "LEADFLOW_LOG_LEVEL": "INFO",
        }
    )
    data_dir: Path = tmp_path_factory.mktemp("churn")
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
        yield system
    finally:
        system.stop()
        asyncio.run(
            pg_admin(
                admin_dsn,
                [f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)' for db in databases.values()],
            )
        )


async def _churn(
    system: System, name: str, ready: asyncio.Event, until: asyncio.Event
) -> list[tuple[float, str]]:
    """Rolling replicas of ``name`` until ``until``: start one (it joins the group), hold,
    stop the previous one (it leaves); every step is a rebalance of ``name``'s group.
    ``ready`` is set once the first replica is in. Returns (monotonic time, step)."""
    events: list[tuple[float, str]] = []
    previous: RunningService | None = None
    try:
        while not until.is_set():
            replica = await asyncio.to_thread(
                system.start_replica, name, free_port(), ready_timeout_s=60
            )
            ready.set()
            events.append((time.monotonic(), f"+{name}"))
            await asyncio.sleep(HOLD_S)
            if previous is not None:
                await asyncio.to_thread(system.stop_replica, previous)
                events.append((time.monotonic(), f"-{name}"))
            previous = replica
    finally:
        if previous is not None:
            await asyncio.to_thread(system.stop_replica, previous)
            events.append((time.monotonic(), f"-{name}"))
    return events


async def _per_lead(bootstrap: str, lead_ids: set[str]) -> dict[str, Any]:
    """Order and once-only checks on the three topics, per lead; returns the problems."""
    seen: dict[str, dict[str, list[tuple[int, int, CloudEvent]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for topic in ("leads.captured", "leads.scored", "leads.routing"):
        for m in await read_topic(bootstrap, topic, timeout_s=30):
            try:
                event = CloudEvent.from_kafka(m.value, m.headers)
            except EnvelopeError:
                continue
            if event.subject in lead_ids:
                seen[event.subject][topic].append((m.partition, m.offset, event))
    problems: dict[str, list[str]] = defaultdict(list)
    for lead in lead_ids:
        first: dict[str, Any] = {}
        for topic, entries in seen[lead].items():
            if len({p for p, _, _ in entries}) > 1:
                problems["in more than one partition"].append(f"{lead} {topic}")
            entries.sort(key=lambda e: e[1])
            times = [e.time for _, _, e in entries]
            if times != sorted(times):
                problems["out of order within a topic"].append(f"{lead} {topic}")
            for _, _, e in entries:
                first.setdefault(e.type, e.time)
        scored_ids = {e.id for _, _, e in seen[lead]["leads.scored"] if e.type == "lead.scored"}
        if len(scored_ids) != 1:
            problems["not scored exactly once"].append(f"{lead} ({len(scored_ids)})")
        chain = [first.get(t) for t in ("lead.captured", "lead.scored", "lead.assigned")]
        if None in chain:
            problems["missing a step"].append(f"{lead} {chain}")
        elif not chain[0] <= chain[1] <= chain[2]:  # type: ignore[operator]
            problems["not captured, then scored, then assigned"].append(lead)
    return {k: (len(v), v[:3]) for k, v in problems.items()}


async def test_rebalance_churn_keeps_per_lead_order_and_the_ledger(churn_system: System) -> None:
    system = churn_system
    began = time.monotonic()
    stream = Stream(system.url("lead-intake"), secrets.token_hex(3))
    posted = asyncio.Event()
    first_in = {name: asyncio.Event() for name in CHURNED}

    async def post() -> None:
        try:
            await stream.run_for(LEADS, RATE_PER_S)
        finally:
            posted.set()

    churns = [asyncio.create_task(_churn(system, name, first_in[name], posted)) for name in CHURNED]
    # The leads start once the first replicas are in, so the churn spans the whole stream.
    await asyncio.gather(*(event.wait() for event in first_in.values()))
    started = time.monotonic()
    await post()
    posted_s = round(time.monotonic() - started, 1)
    churn_events = sorted(
        (round(t - started, 1), step)  # seconds since the first lead (< 0: before)
        for events in await asyncio.gather(*churns)
        for t, step in events
    )
    during = sum(0 <= t <= posted_s for t, _ in churn_events)
    ledger = await check_ledger(
        system.bootstrap_servers, system.url("routing"), system.url("console"), stream.accepted
    )
    settled_s = round(time.monotonic() - started, 1)
    problems = await _per_lead(system.bootstrap_servers, set(stream.accepted))
    figures = {
        "accepted": len(stream.accepted),
        "posted after s": posted_s,
        "churn": churn_events,
        "rebalances caused (joins + leaves)": len(churn_events),
        "of which while leads were posted": during,
        "ledger balanced after s": settled_s,
        "ledger": ledger,
        "per-lead problems": problems,
        "seconds": round(time.monotonic() - began, 1),
    }
    print(json.dumps(figures, indent=1, default=str))
    assert len(stream.accepted) == LEADS and not stream.refused
    assert during >= 6, "too little churn to mean anything"
    assert not problems, problems
    assert ledger["console"]["assigned"] >= LEADS, ledger
