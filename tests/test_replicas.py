"""Two processes each of scoring and routing in their consumer groups: both share the work,
no lead is assigned twice, rotation stays fair."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from leadflow_launcher.system import System
from leadflow_shared.broker import free_port
from tests.helpers import (
    MANAGER,
    WEB,
    data_of,
    eventually,
    group_state,
    headers_of,
    read_topic,
)


def _consumed(metrics: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("leadflow_events_consumed_total{") and 'outcome="handled"' in line
    )


async def test_two_replicas_of_scoring_and_routing_assign_each_lead_once_and_fairly(
    system: System, urls: dict[str, str]
) -> None:
    second_routing = system.start_replica("routing", free_port())
    second_scoring = system.start_replica("scoring", free_port())
    replica = second_routing.url
    members = [urls["routing"], replica, urls["scoring"], second_scoring.url]
    try:
        async with httpx.AsyncClient(timeout=10) as http:

            async def rebalanced() -> bool:
                # Each group has finished its rebalance onto two members (4 partitions per
                # topic: each member then holds some of every topic).
                states = [
                    await group_state(system.bootstrap_servers, group)
                    for group in ("routing", "scoring")
                ]
                return all(state == ("Stable", 2) for state in states)

            await eventually(rebalanced, timeout_s=60, what="both groups stable with 2 members")
            before = {u: _consumed((await http.get(f"{u}/metrics")).text) for u in members}

            lead_ids = []
            for i in range(40):
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

            bodies = await eventually(all_assigned, timeout_s=60, what="40 leads assigned")
            after = {u: _consumed((await http.get(f"{u}/metrics")).text) for u in members}

        # Every process of both services did part of the work.
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
        assert set(ours.values()) == {1} and len(ours) == 40
        # Fair rotation over the whole NA pool (earlier tests' leads included).
        pool = Counter(d["owner"] for d in assigned if d["rule"] == "sdr-na")
        assert set(pool) == {"sdr-ana", "sdr-ben"}
        assert max(pool.values()) - min(pool.values()) <= 1, pool
    finally:
        system.stop_replica(second_routing)
        system.stop_replica(second_scoring)
