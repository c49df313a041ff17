"""``GET/PUT /v1/scoring/rules``: seeded default, versions, validation 422s, roles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from leadflow_scoring.main import create_app
from leadflow_scoring.rules import default_rules
from leadflow_scoring.settings import ScoringSettings
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, running_service

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "mgr-7")


def document(**changes: Any) -> dict[str, Any]:
    doc = default_rules().model_dump(mode="json")
    doc.update(changes)
    return doc


async def test_default_rules_are_version_1_on_first_start(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/scoring/rules", headers=auth_header("sdr", "sdr-1"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["version"] == 1
    assert body["created_by"] == "system"
    assert body["rules"] == default_rules().model_dump(mode="json")


async def test_reading_rules_needs_a_token(service: Service) -> None:
    client, _ = service
    assert (await client.get("/v1/scoring/rules")).status_code == 401


async def test_manager_stores_a_new_version(service: Service) -> None:
    client, _ = service
    r = await client.put("/v1/scoring/rules", json=document(mql_threshold=70), headers=MANAGER)
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["created_by"]) == (2, "mgr-7")
    assert r.json()["rules"]["mql_threshold"] == 70
    current = (await client.get("/v1/scoring/rules", headers=MANAGER)).json()
    assert (current["version"], current["rules"]["mql_threshold"]) == (2, 70)


async def test_admin_may_store_rules(service: Service) -> None:
    client, _ = service
    r = await client.put("/v1/scoring/rules", json=document(), headers=auth_header("admin"))
    assert r.status_code == 200 and r.json()["version"] == 2


@pytest.mark.parametrize("role", ["sdr", "ae", "am", "integration"])
async def test_only_managers_store_rules(service: Service, role: str) -> None:
    client, _ = service
    r = await client.put("/v1/scoring/rules", json=document(), headers=auth_header(role))
    assert r.status_code == 403
    assert (await client.get("/v1/scoring/rules", headers=MANAGER)).json()["version"] == 1


@pytest.mark.parametrize(
    ("rule_change", "field"),
    [
        ({"field": "favourite_colour"}, "fit.0.field"),
        ({"op": "matches"}, "fit.0.op"),
        ({"points": 500}, "fit.0.points"),
        ({"op": "contains_any", "value": 200}, "fit.0"),
    ],
)
async def test_invalid_rules_are_422_naming_the_field(
    service: Service, rule_change: dict[str, Any], field: str
) -> None:
    client, _ = service
    doc = document()
    doc["fit"][0].update(rule_change)
    r = await client.put("/v1/scoring/rules", json=doc, headers=MANAGER)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["fields"]] == [field]
    assert (await client.get("/v1/scoring/rules", headers=MANAGER)).json()["version"] == 1


async def test_missing_sections_and_junk_bodies_are_422(service: Service) -> None:
    client, _ = service
    r = await client.put("/v1/scoring/rules", json={"fit": []}, headers=MANAGER)
    assert r.status_code == 422
    assert {f["field"] for f in r.json()["fields"]} == {"engagement", "mql_threshold", "grades"}
    junk = await client.put(
        "/v1/scoring/rules",
        content=b"\xff\x00{",
        headers={**MANAGER, "Content-Type": "application/json"},
    )
    assert junk.status_code == 422


async def test_stored_rules_survive_a_restart_and_are_not_reseeded(tmp_path: Path) -> None:
    async with running_service(create_app, ScoringSettings, tmp_path) as (client, _):
        put = await client.put(
            "/v1/scoring/rules", json=document(mql_threshold=65), headers=MANAGER
        )
        assert put.status_code == 200
    async with running_service(create_app, ScoringSettings, tmp_path) as (client, _):
        body = (await client.get("/v1/scoring/rules", headers=MANAGER)).json()
        assert (body["version"], body["rules"]["mql_threshold"]) == (2, 65)
