"""Scenario 1: ``kill -9`` each of lead-intake, scoring, routing, deals and webhooks at a
random moment while 1,000 leads flow; the supervisor restarts each; the ledger balances.

Scenario 2: a crash between the database commit and the publish (a failpoint makes
lead-intake exit right after committing a lead, before its response): the client's retry
with the same ``Idempotency-Key`` gets the stored answer, and after the restart the relay
publishes what was committed — the lead is routed once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx

from leadflow_shared.failpoints import EXIT_CODE
from leadflow_shared.ledger import read_ledger
from leadflow_webhooks.testing import Receiver
from tests.faults.conftest import Supervised
from tests.faults.journey import Stream, check_ledger, mql_lead
from tests.helpers import ADMIN, WEB, read_topic

LEADS = 1000
RATE_PER_S = 40
VICTIMS = ("lead-intake", "scoring", "routing", "deals", "webhooks")


async def _subscribe(s: Supervised, receiver: Receiver) -> None:
    async with httpx.AsyncClient(timeout=10, headers=ADMIN) as client:
        r = await client.post(
            f"{s.url('webhooks')}/v1/webhooks",
            json={"url": receiver.url, "event_types": ["lead.assigned"], "description": "CRM"},
        )
        assert r.status_code == 201, r.text


def _webhook_ids_per_lead(receiver: Receiver, lead_ids: set[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in list(receiver.received):
        body = json.loads(item.body)
        lead = body.get("data", {}).get("lead_id")
        if body.get("type") == "lead.assigned" and lead in lead_ids:
            if body["data"].get("role") == "sdr":
                out.setdefault(lead, set()).add(item.headers.get("webhook-id", ""))
    return out


async def _dead_letters(bootstrap: str) -> int:
    return sum([len(await read_topic(bootstrap, f"{name}.dlq")) for name in VICTIMS])


async def test_kill_9_each_service_while_1000_leads_flow(
    supervised_system: Callable[..., Supervised], receiver: Receiver
) -> None:
    s = await asyncio.to_thread(supervised_system)
    await _subscribe(s, receiver)
    stream = Stream(s.url("lead-intake"), secrets.token_hex(3))
    window_s = LEADS / RATE_PER_S
    rng = random.Random()
    moments = sorted(rng.uniform(2, window_s - 2) for _ in VICTIMS)
    victims = rng.sample(VICTIMS, len(VICTIMS))
    killed: list[tuple[str, float]] = []

    async def killer() -> None:
        started = time.monotonic()
        for victim, at in zip(victims, moments, strict=True):
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            os.kill(s.system.services[victim].process.pid, signal.SIGKILL)
            killed.append((victim, round(at, 1)))

    started = time.monotonic()
    await asyncio.gather(stream.run_for(LEADS, RATE_PER_S, retry_s=90), killer())
    ledger = await check_ledger(
        s.system.bootstrap_servers,
        s.url("routing"),
        s.url("console"),
        stream.accepted,
        timeout_s=180,
    )
    elapsed = time.monotonic() - started
    assert len(stream.accepted) == LEADS and not stream.refused, stream.refused[:5]
    state = s.supervisor.snapshot()["processes"]
    for victim in VICTIMS:
        assert state[victim]["restarts"] == 1, (victim, state[victim], s.said)
        assert state[victim]["last_exit"]["code"] == -signal.SIGKILL
    # Each lead's assignment reached the CRM; a redelivery carries the same webhook-id.
    accepted = set(stream.accepted)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        hooks = _webhook_ids_per_lead(receiver, accepted)
        if len(hooks) == len(accepted):
            break
        await asyncio.sleep(1)
    assert len(hooks) == len(accepted), f"{len(accepted) - len(hooks)} leads without a webhook"
    assert all(len(ids) == 1 for ids in hooks.values()), "an assignment was delivered as two"
    assert await _dead_letters(s.system.bootstrap_servers) == 0
    print(
        f"\nscenario 1: {LEADS} leads at {RATE_PER_S}/s, killed {killed}; all assigned once "
        f"{elapsed:.0f}s after the first post; intake connection errors retried: "
        f"{stream.errors}; broker ledger {ledger['broker']['assigned_exactly_once']}"
    )


async def test_crash_between_commit_and_publish(
    supervised_system: Callable[..., Supervised],
) -> None:
    # lead-intake dies right after committing the 3rd group commit, before answering it.
    s = await asyncio.to_thread(
        supervised_system, {"LEADFLOW_FAILPOINTS": "lead-intake:outbox.after_commit@3"}
    )
    run = secrets.token_hex(3)
    answers: dict[int, list[Any]] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(5):
            headers = {**WEB, "Idempotency-Key": f"{run}-{i}"}
            deadline = time.monotonic() + 60
            while True:
                try:
                    r = await client.post(
                        f"{s.url('lead-intake')}/v1/leads", headers=headers, json=mql_lead(run, i)
                    )
                except httpx.HTTPError as exc:
                    answers.setdefault(i, []).append(type(exc).__name__)
                    assert time.monotonic() < deadline, "intake did not come back"
                    await asyncio.sleep(0.3)
                    continue
                answers.setdefault(i, []).append((r.status_code, r.json().get("lead_id")))
                break
    crashed = [i for i, tries in answers.items() if len(tries) > 1]
    assert crashed, f"the failpoint never fired: {answers}"
    state = s.supervisor.snapshot()["processes"]["lead-intake"]
    assert state["restarts"] == 1 and state["last_exit"]["code"] == EXIT_CODE
    lead_ids = [str(tries[-1][1]) for tries in answers.values()]
    assert all(tries[-1][0] in (200, 202) for tries in answers.values()), answers
    # Asking again with the same keys answers the same leads (the stored answer).
    async with httpx.AsyncClient(timeout=10) as client:
        for i in range(5):
            r = await client.post(
                f"{s.url('lead-intake')}/v1/leads",
                headers={**WEB, "Idempotency-Key": f"{run}-{i}"},
                json=mql_lead(run, i),
            )
            assert r.json()["lead_id"] == lead_ids[i]
    ledger = await check_ledger(
        s.system.bootstrap_servers, s.url("routing"), s.url("console"), lead_ids
    )
    # The crashed request's lead was committed before the crash: exactly one lead.captured.
    captured = [
        m
        for m in await read_topic(s.system.bootstrap_servers, "leads.captured")
        if dict(m.headers).get("ce_type") == b"lead.captured"
    ]
    per_lead: dict[str, set[str]] = {}
    for m in captured:
        per_lead.setdefault(m.key.decode() if m.key else "", set()).add(
            dict(m.headers)["ce_id"].decode()
        )
    assert all(len(per_lead.get(lead, ())) == 1 for lead in lead_ids), per_lead
    assert ledger["console"]["captured"] == 5
    assert (await read_ledger(s.system.bootstrap_servers)).check(set(lead_ids))["ok"]
