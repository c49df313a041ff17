"""The rules in force are cached by version: a new version reaches the next event at once,
and a version whose transaction rolled back never scores anything."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from leadflow_scoring import rules_versions
from leadflow_scoring.models import RulesVersionRow
from leadflow_scoring.rules import ScoringRules, default_rules
from leadflow_scoring.rules_versions import current_rules, store_rules
from leadflow_shared.events import LeadCaptured
from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "boss")
IDEAL: dict[str, Any] = {"employees": 250, "title": "VP Marketing", "country": "US"}  # fit 50


def captured(lead_id: str) -> LeadCaptured:
    return LeadCaptured(lead_id=lead_id, email="a@example.com", captured_at=utcnow(), **IDEAL)


def rules(mql_threshold: int) -> dict[str, Any]:
    return {**default_rules().model_dump(mode="json"), "mql_threshold": mql_threshold}


async def last_scored(runtime: ServiceRuntime, lead_id: str) -> dict[str, Any]:
    return [e for e in await outbox_events(runtime, "lead.scored") if e["lead_id"] == lead_id][-1]


async def test_each_put_reaches_the_next_event(service: Service) -> None:
    client, runtime = service
    await deliver(runtime, captured("L1"))  # version 1, now cached
    assert (await last_scored(runtime, "L1"))["mql"] is True  # threshold 50
    for version, threshold, mql in ((2, 90, False), (3, 40, True)):
        put = await client.put("/v1/scoring/rules", json=rules(threshold), headers=MANAGER)
        assert put.json()["version"] == version
        await deliver(runtime, captured(f"L{version}"))
        event = await last_scored(runtime, f"L{version}")
        assert (event["rules_version"], event["mql"]) == (version, mql)


async def test_rules_are_parsed_once_per_version(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, runtime = service
    parsed: list[int] = []
    parse = rules_versions._version_of

    def counting(row: Any) -> rules_versions.RulesVersion:
        parsed.append(row.version)
        return parse(row)

    monkeypatch.setattr(rules_versions, "_version_of", counting)
    for n in range(3):
        await deliver(runtime, captured(f"L{n}"))
    assert parsed == [1]


async def test_a_rolled_back_version_never_scores(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L1"))
    with pytest.raises(RuntimeError):
        async with runtime.db.transaction() as session:
            await store_rules(session, ScoringRules.model_validate(rules(999)), "mgr")
            assert (await current_rules(session)).rules.mql_threshold == 999  # its own view
            raise RuntimeError("rolled back")
    # Another replica then takes the same version number with other rules.
    async with runtime.db.transaction() as session:
        session.add(
            RulesVersionRow(version=2, document=rules(10), created_at=utcnow(), created_by="mgr")
        )
    await deliver(runtime, captured("L2"))
    event = await last_scored(runtime, "L2")
    assert (event["rules_version"], event["mql"]) == (2, True)
