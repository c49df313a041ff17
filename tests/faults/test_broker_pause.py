"""Scenario 5: the broker paused (``SIGSTOP``) for 30 s while leads arrive. Intake keeps
accepting (the outbox grows), ``/readyz`` says ``degraded`` with the reason, the backlog
drains after ``SIGCONT``, and nothing is lost."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.faults.conftest import Supervised
from tests.faults.journey import Stream, check_ledger

LEADS = 400
RATE_PER_S = 10
PAUSE_S = 30


async def test_broker_paused_for_30_s(supervised_system: Callable[..., Supervised]) -> None:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        pytest.skip("pauses the embedded broker")
    s = await asyncio.to_thread(supervised_system)
    broker = s.system.broker
    assert broker is not None and broker.process is not None
    stream = Stream(s.url("lead-intake"), secrets.token_hex(3))
    during: list[dict[str, Any]] = []
    accepted_during = 0

    async def pause() -> None:
        nonlocal accepted_during
        await asyncio.sleep(3)
        assert broker.process is not None
        os.kill(broker.process.pid, signal.SIGSTOP)
        before = len(stream.accepted)
        try:
            deadline = time.monotonic() + PAUSE_S
            async with httpx.AsyncClient(timeout=15) as client:
                while time.monotonic() < deadline:
                    r = await client.get(f"{s.url('lead-intake')}/readyz")
                    during.append({"http": r.status_code, **r.json()})
                    await asyncio.sleep(2)
        finally:
            accepted_during = len(stream.accepted) - before
            os.kill(broker.process.pid, signal.SIGCONT)

    started = time.monotonic()
    await asyncio.gather(stream.run_for(LEADS, RATE_PER_S, retry_s=30), pause())
    ledger = await check_ledger(
        s.system.bootstrap_servers,
        s.url("routing"),
        s.url("console"),
        stream.accepted,
        timeout_s=180,
    )
    elapsed = time.monotonic() - started
    assert len(stream.accepted) == LEADS and not stream.refused, stream.refused[:5]
    # Intake went on accepting at the offered rate while the broker was away.
    assert accepted_during >= 0.8 * RATE_PER_S * PAUSE_S, accepted_during
    degraded = [d for d in during if d["status"] == "degraded"]
    assert degraded, during
    assert all(d["http"] == 200 for d in during), during
    reason = " ".join(degraded[-1]["reasons"])
    assert "broker unreachable" in reason and "waiting" in reason, degraded[-1]
    assert not degraded[-1]["checks"]["broker"]
    # And afterwards everything is ready again.
    async with httpx.AsyncClient(timeout=10) as client:
        for name, url in s.urls.items():
            ready = (await client.get(f"{url}/readyz")).json()
            assert ready["status"] == "ready", (name, ready)
    assert not s.supervisor.snapshot()["events"], "a process died during the pause"
    print(
        f"\nscenario 5: broker paused {PAUSE_S}s; accepted during the pause: {accepted_during}; "
        f"all {ledger['leads']} assigned once {elapsed:.0f}s after the first post; "
        f"readyz during: {degraded[-1]['reasons']}"
    )
