"""HTTP surface: auth on every JSON route, input validation, the public dashboard page."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header

Service = tuple[httpx.AsyncClient, ServiceRuntime]
JSON_ROUTES = ["/v1/funnel", "/v1/topics", "/v1/sla", "/v1/load"]


@pytest.mark.parametrize("path", JSON_ROUTES)
async def test_json_routes_need_a_bearer_token(service: Service, path: str) -> None:
    client, _ = service
    assert (await client.get(path)).status_code == 401
    bad = await client.get(path, headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401
    assert bad.json()["error"] == "unauthorized"


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("role", ["sdr", "ae", "am", "integration"])
async def test_json_routes_are_for_managers_and_admins_only(
    service: Service, path: str, role: str
) -> None:
    client, _ = service
    r = await client.get(path, headers=auth_header(role, "someone"))
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"


@pytest.mark.parametrize("role", ["manager", "admin"])
async def test_managers_and_admins_read_the_funnel_sla_and_load(
    service: Service, role: str
) -> None:
    client, _ = service
    for path in ["/v1/funnel", "/v1/sla", "/v1/load"]:
        r = await client.get(path, headers=auth_header(role, "boss"))
        assert r.status_code == 200, (path, r.text)


async def test_topics_answer_503_broker_disabled_without_a_broker(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/topics", headers=auth_header("admin"))
    assert r.status_code == 503
    assert r.json()["error"] == "broker_disabled"
    assert "LEADFLOW_KAFKA_ENABLED" in r.json()["detail"]


@pytest.mark.parametrize("path", ["/v1/funnel", "/v1/sla"])
async def test_window_with_from_after_to_is_422_naming_from(service: Service, path: str) -> None:
    client, _ = service
    r = await client.get(
        path,
        params={"from": "2026-11-02T10:00:00+00:00", "to": "2026-11-02T09:00:00Z"},
        headers=auth_header("manager"),
    )
    assert r.status_code == 422
    assert [f["field"] for f in r.json()["fields"]] == ["from"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-11-02T10:00:00"}, "from"),  # no UTC offset
        ({"to": "2026-13-40T00:00:00Z"}, "to"),
        ({"to": "2026-11-02T10:00:00\x00Z"}, "to"),
    ],
)
async def test_invalid_window_datetimes_are_422_naming_the_field(
    service: Service, params: dict[str, str], field: str
) -> None:
    client, _ = service
    r = await client.get("/v1/funnel", params=params, headers=auth_header("manager"))
    assert r.status_code == 422
    assert field in {f["field"] for f in r.json()["fields"]}


@pytest.mark.parametrize("limit", ["0", "1001", "-5", "ten", "99999999999999999999999"])
async def test_sla_limit_out_of_range_is_422(service: Service, limit: str) -> None:
    client, _ = service
    r = await client.get("/v1/sla", params={"limit": limit}, headers=auth_header("manager"))
    assert r.status_code == 422
    assert r.json()["fields"][0]["field"] == "limit"


async def test_unauthenticated_bad_input_is_still_401(service: Service) -> None:
    client, _ = service
    r = await client.get("/v1/funnel", params={"from": "nope"})
    assert r.status_code == 401


async def test_dashboard_is_public_self_contained_and_locked_down(service: Service) -> None:
    client, _ = service
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    page = r.text
    for path in JSON_ROUTES:
        assert path in page
    assert "localStorage" in page
    # Nothing is loaded from elsewhere (the machines have no internet).
    assert "http://" not in page and "https://" not in page and "src=" not in page
    # Data reaches the DOM as text only.
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'sha256-" in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_dashboard_csp_hash_matches_the_inline_script(service: Service) -> None:
    client, _ = service
    r = await client.get("/")
    script = re.search(r"<script>(.*?)</script>", r.text, flags=re.DOTALL)
    assert script is not None
    digest = base64.b64encode(hashlib.sha256(script.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in r.headers["content-security-policy"]
