"""The embedded default loses nothing across a restart: leads in flight, then a graceful
stop or a ``kill -9`` of every process (the broker, which keeps topics in memory, included),
then a start on the same data directory. Every accepted lead is assigned exactly once, and
the console's funnel agrees.

This runs the system exactly as ``make run`` does: the embedded broker and SQLite files.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest

from leadflow_launcher.demo import lift_daily_capacity, load_demo
from leadflow_launcher.system import SERVICES, System
from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.settings import DEV_JWT_SECRET
from tests.faults.journey import Stream, check_ledger

LEADS = 300
RATE_PER_S = 60


def _embedded_system(data_dir: Path) -> System:
    if any(k.startswith(("KAFKA_BOOTSTRAP", "DATABASE_URL")) for k in _environ()):
        pytest.skip("needs the embedded defaults (no KAFKA_BOOTSTRAP_SERVERS/DATABASE_URL_*)")
    return System(
        data_dir=data_dir,
        ports={s.name: free_port() for s in SERVICES},
        broker_port=free_port(),
        env={"LEADFLOW_LOG_LEVEL": "INFO"},
    )


def _environ() -> list[str]:
    import os

    return list(os.environ)


@pytest.mark.parametrize("how", ["graceful", "kill -9"])
async def test_no_lead_is_lost_across_a_restart_of_everything(how: str, tmp_path: Path) -> None:
    system = _embedded_system(tmp_path)
    admin = mint_token(DEV_JWT_SECRET, sub="admin", role="admin")
    try:
        await asyncio.to_thread(system.start, ready_timeout_s=120)
        urls = {s.name: system.url(s.name) for s in SERVICES}
        await asyncio.to_thread(load_demo, urls, admin, tmp_path)
        await asyncio.to_thread(lift_daily_capacity, urls["routing"], admin)
        stream = Stream(urls["lead-intake"], secrets.token_hex(3))
        await stream.run_for(LEADS, RATE_PER_S)
        # Leads are still in flight (scored, being routed, delivered to the console) now.
        first_epoch = system.broker_epoch
        if how == "graceful":
            await asyncio.to_thread(system.stop)
        else:
            await asyncio.to_thread(system.kill)
        await asyncio.to_thread(system.start, ready_timeout_s=120)
        assert system.broker_epoch != first_epoch  # a new, empty broker
        ledger = await check_ledger(
            system.bootstrap_servers,
            system.url("routing"),
            system.url("console"),
            stream.accepted,
        )
        assert len(stream.accepted) == LEADS and not stream.refused
        counts = ledger["console"]
        assert counts["captured"] == LEADS, counts
        assert counts["assigned"] == LEADS, counts
    finally:
        await asyncio.to_thread(system.stop)
