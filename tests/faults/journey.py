"""What the fault tests share: a stream of leads through the journey and the ledger.

The ledger is checked on both sides: the routing database (through its API: one SDR
decision per lead in the decision history, the lead's SDR set) and the broker
(``leads.routing``: distinct ``lead.assigned`` event ids per lead), and the console's
funnel must agree with them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from leadflow_shared.ledger import read_ledger
from tests.helpers import ADMIN, WEB


def mql_lead(run: str, i: int) -> dict[str, Any]:
    """A lead the demo rules score as an MQL and route to a North-America SDR."""
    return {
        "email": f"fault-{run}-{i}@bigcorp-{i % 53}.com",
        "first_name": "Fault",
        "company": f"Bigcorp {i % 53}",
        "title": "VP Sales",
        "country": "US",
        "employees": 2500,
        "industry": "software",
    }


@dataclass
class Stream:
    """Leads posted at a steady rate; ``accepted`` holds every lead id that got a 2xx."""

    intake: str
    run: str
    accepted: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)  # status codes other than 2xx
    errors: int = 0  # connection errors (the service was down): the client retries those
    unavailable: int = 0  # 503 answers (retried with the same key)
    unavailable_codes: dict[str, int] = field(default_factory=dict)  # 503s by problem code
    without_retry_after: int = 0  # 503 answers that did not say when to retry

    async def post(self, client: httpx.AsyncClient, i: int, deadline: float) -> None:
        """Post lead ``i``; on a connection error or a 503 retry with the same
        ``Idempotency-Key`` until ``deadline`` (what a careful client does)."""
        headers = {**WEB, "Idempotency-Key": f"{self.run}-{i}"}
        while True:
            try:
                r = await client.post(
                    f"{self.intake}/v1/leads", headers=headers, json=mql_lead(self.run, i)
                )
            except httpx.HTTPError:
                self.errors += 1
                r = None
            if r is not None and r.status_code in (200, 201, 202):
                self.accepted.append(str(r.json()["lead_id"]))
                return
            if r is not None and r.status_code != 503:
                self.refused.append(r.status_code)
                return
            if r is not None:
                self.unavailable += 1
                try:
                    code = str(r.json().get("error", ""))
                except ValueError:
                    code = ""
                self.unavailable_codes[code] = self.unavailable_codes.get(code, 0) + 1
                self.without_retry_after += "retry-after" not in r.headers
            if time.monotonic() > deadline:
                raise AssertionError(f"lead {i} not accepted before the deadline")
            await asyncio.sleep(0.2)

    async def run_for(self, count: int, rate_per_s: float, *, retry_s: float = 60) -> None:
        """Post ``count`` leads at ``rate_per_s`` (open loop, bounded in time)."""
        async with httpx.AsyncClient(timeout=10) as client:
            started = time.monotonic()
            deadline = started + count / rate_per_s + retry_s
            tasks = []
            for i in range(count):
                await asyncio.sleep(max(0.0, started + i / rate_per_s - time.monotonic()))
                tasks.append(asyncio.create_task(self.post(client, i, deadline)))
            await asyncio.gather(*tasks)


async def sdr_decisions(routing: str, lead_ids: list[str]) -> dict[str, list[str]]:
    """Per lead, the SDR owners of every SDR decision in routing's history ([] if none)."""
    out: dict[str, list[str]] = {}
    sem = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:

        async def one(lead_id: str) -> None:
            async with sem:
                r = await client.get(f"{routing}/v1/assignments/{lead_id}")
            if r.status_code == 404:
                out[lead_id] = []
                return
            r.raise_for_status()
            out[lead_id] = [
                str(h["owner"])
                for h in r.json()["history"]
                if h["role"] == "sdr" and h["kind"] == "assigned"
            ]

        await asyncio.gather(*(one(lead_id) for lead_id in lead_ids))
    return out


async def wait_all_assigned(
    routing: str, lead_ids: list[str], timeout_s: float
) -> dict[str, list[str]]:
    """Poll until every lead has an SDR decision (or ``timeout_s``); the last answer."""
    deadline = time.monotonic() + timeout_s
    pending = list(lead_ids)
    decisions: dict[str, list[str]] = {}
    while True:
        try:
            decisions.update(await sdr_decisions(routing, pending))
        except httpx.TransportError:
            # routing is down (a fault test killed it; its supervisor restarts it): ask again
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)
            continue
        pending = [lead for lead in pending if not decisions[lead]]
        if not pending or time.monotonic() > deadline:
            return decisions
        await asyncio.sleep(1)


async def check_ledger(
    bootstrap: str, routing: str, console: str, lead_ids: list[str], *, timeout_s: float = 120
) -> dict[str, Any]:
    """Every accepted lead has exactly one SDR decision, in routing's history and on the
    broker; the console's funnel counts each once. Returns the figures (asserted)."""
    decisions = await wait_all_assigned(routing, lead_ids, timeout_s)
    missing = [lead for lead, owners in decisions.items() if not owners]
    twice = {lead: owners for lead, owners in decisions.items() if len(owners) > 1}
    broker = (await read_ledger(bootstrap)).check(set(lead_ids))
    assert not missing, f"{len(missing)} accepted lead(s) never assigned, e.g. {missing[:5]}"
    assert not twice, f"lead(s) assigned more than once: {dict(list(twice.items())[:5])}"
    assert broker["ok"], f"broker ledger: {broker}"
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = await client.get(f"{console}/v1/funnel")
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1)
                continue
            r.raise_for_status()
            counts = r.json()["counts"]
            if counts.get("assigned", 0) >= len(lead_ids) or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    return {
        "leads": len(lead_ids),
        "assigned_once": len(lead_ids) - len(missing) - len(twice),
        "broker": broker,
        "console": counts,
    }
