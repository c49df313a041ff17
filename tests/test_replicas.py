"""Two routing replicas in one consumer group: no lead assigned twice, rotation stays fair."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

import httpx

from leadflow_launcher.system import EMBEDDED_FETCH_MAX_WAIT_MS, System
from leadflow_shared.broker import free_port
from tests.helpers import MANAGER, WEB, data_of, eventually, headers_of, read_topic


def _start_second_routing(system: System) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        **system.env,
        "LEADFLOW_DATA_DIR": str(system.data_dir),
        "KAFKA_BOOTSTRAP_SERVERS": system.bootstrap_servers,
        "KAFKA_FETCH_MAX_WAIT_MS": str(EMBEDDED_FETCH_MAX_WAIT_MS["routing"]),
    }
    log = (system.data_dir / "logs" / "routing-replica-2.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "leadflow_routing.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}"


def _consumed(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("leadflow_events_consumed_total{") and 'outcome="handled"' in line
    )


async def test_two_routing_replicas_assign_each_lead_once_and_fairly(
    system: System, urls: dict[str, str]
) -> None:
    process, replica = _start_second_routing(system)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                try:
                    if (await http.get(f"{replica}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "second routing replica not ready"
                await asyncio.sleep(0.3)
            await asyncio.sleep(5)  # the group rebalances onto two members
            before = {
                u: _consumed((await http.get(f"{u}/metrics")).text)
                for u in (urls["routing"], replica)
            }

            lead_ids = []
            for i in range(24):
                r = await http.post(
                    f"{urls['lead-intake']}/v1/leads",
                    headers=WEB,
                    json={
                        "email": f"replica-{i}@bigcorp.com",
                        "company": f"Co {i}",
                        "title": "VP Sales",
                        "country": "US",
                        "employees": 3000,
                        "industry": "software",
                    },
                )
                assert r.status_code == 202, r.text
                lead_ids.append(r.json()["lead_id"])

            async def all_assigned() -> list[dict[str, Any]] | None:
                bodies = []
                for lead_id in lead_ids:
                    r = await http.get(f"{replica}/v1/assignments/{lead_id}", headers=MANAGER)
                    if r.status_code != 200 or not r.json()["owners"]["sdr"]:
                        return None
                    bodies.append(r.json())
                return bodies

            bodies = await eventually(all_assigned, timeout_s=60, what="24 leads assigned")
            after = {
                u: _consumed((await http.get(f"{u}/metrics")).text)
                for u in (urls["routing"], replica)
            }

        # Both replicas did part of the work.
        assert all(after[u] > before[u] for u in after), (before, after)
        # Exactly one SDR decision per lead, in the database and on the topic.
        for body in bodies:
            assert [h["kind"] for h in body["history"]].count("assigned") == 1
        assigned = [
            data_of(m)
            for m in await read_topic(system.bootstrap_servers, "leads.routing")
            if headers_of(m)["ce_type"] == "lead.assigned"
        ]
        ours = Counter(
            d["lead_id"] for d in assigned if d["lead_id"] in set(lead_ids) and d["role"] == "sdr"
        )
        assert set(ours.values()) == {1} and len(ours) == 24
        # Fair rotation over the whole NA pool (earlier tests' leads included).
        pool = Counter(d["owner"] for d in assigned if d["rule"] == "sdr-na")
        assert set(pool) == {"sdr-ana", "sdr-ben"}
        assert max(pool.values()) - min(pool.values()) <= 1, pool
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
