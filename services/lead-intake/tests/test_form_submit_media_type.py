"""A form submit in a content type forms do not use is a 415 (contract v2), documented."""

from __future__ import annotations

import httpx

from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header

Service = tuple[httpx.AsyncClient, ServiceRuntime]
ORIGIN = "https://www.acme.test"


async def test_json_posted_to_a_form_is_415(service: Service) -> None:
    client, _ = service
    r = await client.post(
        "/v1/forms",
        json={"name": "contact", "allowed_origins": [ORIGIN], "redirect_url": f"{ORIGIN}/t"},
        headers=auth_header("admin"),
    )
    key = r.json()["form_key"]
    r = await client.post(
        f"/v1/forms/{key}/submit", json={"email": "a@b.io"}, headers={"Origin": ORIGIN}
    )
    assert r.status_code == 415
    assert r.json()["error"] == "unsupported_media_type"
    document = (await client.get("/openapi.json")).json()
    assert "415" in document["paths"]["/v1/forms/{form_key}/submit"]["post"]["responses"]
