"""Who may call what: every endpoint of every service, times every kind of token.

The endpoints are read from each app's routes, so a new endpoint without a row in
:data:`MATRIX` (or :data:`PUBLIC`) fails :func:`test_every_endpoint_has_a_row`.

Columns: five bad tokens (none, malformed, expired, signed with the wrong secret,
``alg: none``; each claims ``role: admin``, so a 401 proves the token was refused, not
the role) must get 401 on every non-public endpoint. Then one token per role, whose
``sub`` is ``<role>-own``: the owner of the objects seeded for owner-scoped endpoints
(an SDR's lead, an AE's deal, an integration's webhook). The last column, ``other``, is
the same rep role with another ``sub`` (``<role>-other``) on the same object.

Cell values: ``ok`` means admitted (neither 401 nor 403, and no 5xx: the request reached
the handler; it may still be a 404, 409 or 422 there); a number is that exact status;
``-`` means the column does not apply (the endpoint is not owner-scoped).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from leadflow_shared.auth import ROLES, mint_token
from leadflow_shared.events import (
    AccountAssigned,
    DealCreated,
    DealWon,
    LeadAssigned,
    LeadCaptured,
    LeadScored,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import deliver, outbox_events

from .test_api_fuzzing import SERVICES

# --- the tokens -----------------------------------------------------------------------------

BAD_TOKENS = ("none", "malformed", "expired", "wrong_secret", "alg_none")
COLUMNS = (*ROLES, "other")  # admin manager sdr ae am integration other


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_header(kind: str) -> dict[str, str]:
    if kind == "none":
        return {}
    if kind == "malformed":
        return {"Authorization": "Bearer not.a-jwt"}
    if kind == "expired":
        token = mint_token(DEV_JWT_SECRET, sub="x", role="admin", ttl=timedelta(seconds=-60))
    elif kind == "wrong_secret":
        token = mint_token("another-secret-of-32-bytes-or-more!", sub="x", role="admin")
    else:  # alg_none: unsigned, claims everything
        exp = int((utcnow() + timedelta(hours=1)).timestamp())
        claims = {"sub": "x", "role": "admin", "exp": exp}
        token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    return {"Authorization": f"Bearer {token}"}


def role_header(role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(DEV_JWT_SECRET, sub=sub, role=role)}"}


# --- the table ------------------------------------------------------------------------------

# Answer without any token (bad tokens are ignored, not refused).
PUBLIC: set[tuple[str, str, str]] = {
    *(
        (service, "GET", path)
        for service in SERVICES
        for path in (
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/docs",
            "/docs/oauth2-redirect",
            "/docs/assets/{name}",
            "/redoc",
        )
    ),
    ("lead-intake", "POST", "/v1/forms/{form_key}/submit"),  # the form key is public
    ("lead-intake", "GET", "/v1/forms/{form_key}/embed"),  # the page to embed: public too
    ("console", "GET", "/"),  # the dashboard page holds no data; it asks for a token
}

# fmt: off
MATRIX: dict[tuple[str, str, str], str] = {
    #                                                 admin manager sdr  ae   am   integ other
    ("lead-intake", "POST", "/v1/leads"):                "ok  ok      403  403  403  ok    -",
    ("lead-intake", "GET", "/v1/leads/{lead_id}"):       "ok  ok      ok   ok   ok   ok    403",
    ("lead-intake", "DELETE", "/v1/leads/{lead_id}"):    "ok  403     403  403  403  403   -",
    ("lead-intake", "POST", "/v1/leads/import"):         "ok  ok      403  403  403  ok    -",
    # another integration's import is hidden: 404, not 403
    ("lead-intake", "GET", "/v1/leads/imports/{import_id}"):
                                                         "ok  ok      403  403  403  ok    404",
    ("lead-intake", "POST", "/v1/engagements"):          "ok  ok      403  403  403  ok    -",
    ("lead-intake", "POST", "/v1/forms"):                "ok  403     403  403  403  403   -",
    ("lead-intake", "POST", "/v1/accounts/import"):      "ok  403     403  403  403  403   -",
    ("lead-intake", "GET", "/v1/accounts"):              "ok  ok      ok   ok   ok   403   -",
    ("lead-intake", "GET", "/v1/accounts/{account_id}"): "ok  ok      ok   ok   ok   403   -",

    ("scoring", "GET", "/v1/scores/{lead_id}"):          "ok  ok      ok   ok   ok   ok    403",
    ("scoring", "GET", "/v1/scoring/rules"):             "ok  ok      ok   ok   ok   ok    -",
    ("scoring", "PUT", "/v1/scoring/rules"):             "ok  ok      403  403  403  403   -",
    ("scoring", "POST", "/v1/scoring/rules/preview"):    "ok  ok      403  403  403  403   -",

    ("routing", "POST", "/v1/reps"):                     "ok  ok      403  403  403  403   -",
    ("routing", "GET", "/v1/reps"):                      "ok  ok      ok   ok   ok   ok    -",
    ("routing", "GET", "/v1/reps/{rep_id}"):             "ok  ok      ok   ok   ok   ok    -",
    # a rep changes their own hours only; "other" is a rep changing someone else
    ("routing", "PATCH", "/v1/reps/{rep_id}"):           "ok  ok      ok   ok   ok   403   403",
    ("routing", "GET", "/v1/routing/rules"):             "ok  ok      403  403  403  403   -",
    ("routing", "PUT", "/v1/routing/rules"):             "ok  ok      403  403  403  403   -",
    ("routing", "POST", "/v1/routing/simulate"):         "ok  ok      403  403  403  403   -",
    ("routing", "GET", "/v1/routing/waiting"):           "ok  ok      403  403  403  403   -",
    ("routing", "GET", "/v1/assignments/{lead_id}"):     "ok  ok      ok   ok   ok   ok    403",
    ("routing", "GET", "/v1/assignments/{lead_id}/replay"):
                                                         "ok  ok      ok   ok   ok   ok    403",
    # integrations have no queue; "other" asks for the owner's queue
    ("routing", "GET", "/v1/queue"):                     "ok  ok      ok   ok   ok   403   403",
    ("routing", "POST", "/v1/leads/{lead_id}/accept"):   "ok  ok      ok   403  403  403   403",
    ("routing", "POST", "/v1/leads/{lead_id}/qualify"):  "ok  ok      ok   403  403  403   403",
    ("routing", "POST", "/v1/leads/{lead_id}/disqualify"):
                                                         "ok  ok      ok   403  403  403   403",
    ("routing", "POST", "/v1/leads/{lead_id}/recycle"):  "ok  ok      ok   403  403  403   403",

    # an AE sees their own deals; "other" asks for the owner's
    ("deals", "GET", "/v1/deals"):                       "ok  ok      403  ok   403  403   403",
    ("deals", "GET", "/v1/deals/{deal_id}"):             "ok  ok      403  ok   403  403   403",
    ("deals", "PATCH", "/v1/deals/{deal_id}"):           "ok  ok      403  ok   403  403   403",
    ("deals", "POST", "/v1/deals/{deal_id}/close"):      "ok  ok      403  ok   403  403   403",
    ("deals", "PUT", "/v1/quotas/{rep_id}"):             "ok  ok      403  403  403  403   -",
    ("deals", "GET", "/v1/forecast"):                    "ok  ok      403  ok   403  403   403",

    ("webhooks", "POST", "/v1/webhooks"):                "ok  403     403  403  403  ok    -",
    ("webhooks", "GET", "/v1/webhooks"):                 "ok  403     403  403  403  ok    -",
    ("webhooks", "GET", "/v1/webhooks/{subscription_id}"):
                                                         "ok  403     403  403  403  ok    403",
    ("webhooks", "DELETE", "/v1/webhooks/{subscription_id}"):
                                                         "ok  403     403  403  403  ok    403",
    ("webhooks", "GET", "/v1/webhooks/{subscription_id}/deliveries"):
                                                         "ok  403     403  403  403  ok    403",
    ("webhooks", "GET", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}"):
                                                         "ok  403     403  403  403  ok    403",
    ("webhooks", "POST", "/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/retry"):
                                                         "ok  403     403  403  403  ok    403",

    # in process there is no broker: an admitted caller gets topics' documented 503
    ("console", "GET", "/v1/topics"):                    "503 503     403  403  403  403   -",
    ("console", "GET", "/v1/funnel"):                    "ok  ok      403  403  403  403   -",
    ("console", "GET", "/v1/sla"):                       "ok  ok      403  403  403  403   -",
    ("console", "GET", "/v1/load"):                      "ok  ok      403  403  403  403   -",
    ("console", "GET", "/v1/system/processes"):          "ok  ok      403  403  403  403   -",
}
# fmt: on

# "other" acts as this rep role (the row's owner-scoped role)
OTHER_ROLE: dict[tuple[str, str, str], str] = {
    ("lead-intake", "GET", "/v1/leads/imports/{import_id}"): "integration",
    **{key: "integration" for key in MATRIX if key[0] == "webhooks"},
    **{key: "ae" for key in MATRIX if key[0] == "deals"},
}
DEFAULT_OTHER_ROLE = "sdr"


def cells(key: tuple[str, str, str]) -> dict[str, str]:
    values = MATRIX[key].split()
    assert len(values) == len(COLUMNS), key
    return dict(zip(COLUMNS, values, strict=True))


# --- the requests ---------------------------------------------------------------------------


@dataclass
class Seeded:
    """Ids of the objects the ``-own`` tokens own, per service."""

    ids: dict[str, str]


def request_for(
    key: tuple[str, str, str], role: str, sub: str, seeded: Seeded
) -> tuple[str, dict[str, Any] | None, dict[str, str]]:
    """(url, JSON body, extra headers) of a valid request for ``key`` as ``role``/``sub``."""
    template = key[2]
    ids = seeded.ids
    path = template
    for name in ("lead_id", "deal_id", "import_id", "subscription_id", "delivery_id"):
        path = path.replace("{" + name + "}", ids.get(name, "unknown"))
    owner_rep = "sdr-own"
    if "{rep_id}" in path:
        # reps patch themselves; everyone else targets the SDR
        target = sub if role in {"sdr", "ae", "am"} and sub.endswith("-own") else owner_rep
        path = path.replace("{rep_id}", target)
    body: dict[str, Any] | None = BODIES.get(key)
    headers: dict[str, str] = {}
    query = ""
    if key == ("routing", "GET", "/v1/queue"):
        query = (
            "?owner=sdr-own&role=sdr"
            if role in {"admin", "manager"} or sub.endswith("-other")
            else ""
        )
    elif key == ("deals", "GET", "/v1/deals") and sub.endswith("-other"):
        query = "?owner=ae-own"
    elif key == ("deals", "GET", "/v1/forecast"):
        query = "?period=2026-Q4" + ("&owner=ae-own" if sub.endswith("-other") else "")
    elif key == ("routing", "PATCH", "/v1/reps/{rep_id}") and sub.endswith("-other"):
        path = "/v1/reps/sdr-own"
    elif key[2] == "/v1/leads/import":
        headers["Content-Type"] = "text/csv"
    return path + query, body, headers


BODIES: dict[tuple[str, str, str], dict[str, Any]] = {
    ("lead-intake", "POST", "/v1/leads"): {"email": "matrix@example.com"},
    ("lead-intake", "POST", "/v1/engagements"): {"email": "own@example.com", "type": "page_view"},
    ("lead-intake", "POST", "/v1/forms"): {
        "name": "matrix",
        "allowed_origins": ["https://www.example.com"],
        "redirect_url": "https://www.example.com/thanks",
    },
    ("scoring", "PUT", "/v1/scoring/rules"): {},  # 422 (admitted) is enough
    ("scoring", "POST", "/v1/scoring/rules/preview"): {},  # 422 (admitted) is enough
    ("routing", "POST", "/v1/reps"): {
        "id": "new-rep",
        "name": "New",
        "email": "new@example.com",
        "role": "sdr",
    },
    ("routing", "PATCH", "/v1/reps/{rep_id}"): {"out_of_office": False},
    ("routing", "PUT", "/v1/routing/rules"): {"rules": []},
    ("routing", "POST", "/v1/routing/simulate"): {"rules": {"rules": []}},
    ("routing", "POST", "/v1/leads/{lead_id}/qualify"): {
        "budget": "50k",
        "authority": "CTO",
        "need": "routing",
        "timeline": "Q1",
    },
    ("routing", "POST", "/v1/leads/{lead_id}/disqualify"): {"reason": "no_need"},
    ("routing", "POST", "/v1/leads/{lead_id}/recycle"): {"reason": "bad_timing"},
    ("deals", "PATCH", "/v1/deals/{deal_id}"): {"notes": "matrix"},
    ("deals", "POST", "/v1/deals/{deal_id}/close"): {"outcome": "lost", "reason": "price"},
    ("deals", "PUT", "/v1/quotas/{rep_id}"): {"period": "2026-Q4", "amount": "1000"},
    ("webhooks", "POST", "/v1/webhooks"): {
        "url": "https://hooks.example.com/leadflow",
        "event_types": ["lead.captured"],
    },
}


# --- seeding --------------------------------------------------------------------------------

Client = httpx.AsyncClient
MANAGER = role_header("manager", "manager-own")


def _assigned(lead_id: str, role: str, owner: str) -> LeadAssigned:
    return LeadAssigned.model_validate(
        {"lead_id": lead_id, "role": role, "owner": owner, "rule": "r", "strategy": "s"}
        | {"reason": "matrix"}
    )


async def _owned_by_reps(runtime: ServiceRuntime, lead_id: str) -> None:
    """sdr-own, ae-own and am-own own ``lead_id`` (as routing announces it)."""
    await deliver(runtime, _assigned(lead_id, "sdr", "sdr-own"))
    await deliver(runtime, _assigned(lead_id, "ae", "ae-own"))
    await deliver(
        runtime,
        AccountAssigned(
            lead_id=lead_id, owner="am-own", deal_id=new_id(), rule="r", strategy="s", reason="w"
        ),
    )


async def seed_intake(client: Client, runtime: ServiceRuntime) -> dict[str, str]:
    web = role_header("integration", "integration-own")
    r = await client.post("/v1/leads", json={"email": "own@example.com"}, headers=web)
    lead_id = r.json()["lead_id"]
    await _owned_by_reps(runtime, lead_id)
    csv = {**web, "Content-Type": "text/csv"}
    r = await client.post("/v1/leads/import", content=b"email\nimp@example.com\n", headers=csv)
    assert r.status_code == 200, r.text
    return {"lead_id": lead_id, "import_id": r.json()["import_id"]}


async def seed_scoring(client: Client, runtime: ServiceRuntime) -> dict[str, str]:
    lead_id = new_id()
    await deliver(
        runtime,
        LeadCaptured(lead_id=lead_id, email="own@example.com", country="US", captured_at=utcnow()),
    )
    await _owned_by_reps(runtime, lead_id)
    return {"lead_id": lead_id}


async def seed_routing(client: Client, runtime: ServiceRuntime) -> dict[str, str]:
    for rep_id, role in (("sdr-own", "sdr"), ("ae-own", "ae"), ("am-own", "am")):
        rep = {"id": rep_id, "name": rep_id, "email": f"{rep_id}@example.com", "role": role}
        assert (await client.post("/v1/reps", json=rep, headers=MANAGER)).status_code == 201
    lead_id = new_id()
    await deliver(
        runtime,
        LeadCaptured(
            lead_id=lead_id, email="own@example.com", company="Acme", captured_at=utcnow()
        ),
    )
    scored = LeadScored(
        lead_id=lead_id,
        score=70,
        fit=60,
        engagement=10,
        grade="B",
        mql=True,
        became_mql=True,
        rules_version=1,
        scored_at=utcnow(),
    )
    await deliver(runtime, scored)
    # the SDR accepts and qualifies (an AE is assigned), the deal is won (an AM is assigned)
    sdr = role_header("sdr", "sdr-own")
    assert (await client.post(f"/v1/leads/{lead_id}/accept", headers=sdr)).status_code == 200
    qualify = BODIES[("routing", "POST", "/v1/leads/{lead_id}/qualify")]
    r = await client.post(f"/v1/leads/{lead_id}/qualify", json=qualify, headers=sdr)
    assert r.status_code == 200 and r.json()["owners"]["ae"] == "ae-own", r.text
    deal_id = new_id()
    common = {"lead_id": lead_id, "deal_id": deal_id, "owner": "ae-own", "currency": "USD"}
    await deliver(
        runtime,
        DealCreated(**common, stage="discovery", probability=10, created_at=utcnow()),
    )
    await deliver(runtime, DealWon(**common, amount="1000", closed_at=utcnow()))
    owners = (await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)).json()["owners"]
    assert owners == {"sdr": "sdr-own", "ae": "ae-own", "am": "am-own"}
    return {"lead_id": lead_id}


async def seed_deals(client: Client, runtime: ServiceRuntime) -> dict[str, str]:
    lead_id = new_id()
    await deliver(runtime, _assigned(lead_id, "ae", "ae-own"))
    (deal,) = await outbox_events(runtime, "deal.created")
    return {"deal_id": str(deal["deal_id"])}


async def seed_webhooks(client: Client, runtime: ServiceRuntime) -> dict[str, str]:
    own = role_header("integration", "integration-own")
    body = BODIES[("webhooks", "POST", "/v1/webhooks")]
    r = await client.post("/v1/webhooks", json=body, headers=own)
    assert r.status_code == 201, r.text
    return {"subscription_id": r.json()["id"], "delivery_id": new_id()}


async def seed_nothing(client: Client, runtime: ServiceRuntime) -> dict[str, str]:
    return {}


SEEDS: dict[str, Callable[[Client, ServiceRuntime], Awaitable[dict[str, str]]]] = {
    "lead-intake": seed_intake,
    "scoring": seed_scoring,
    "routing": seed_routing,
    "deals": seed_deals,
    "webhooks": seed_webhooks,
    "console": seed_nothing,
}


# --- the tests ------------------------------------------------------------------------------


def service_app(service: str, directory: Path) -> FastAPI:
    create_app, settings_cls = SERVICES[service]
    settings = settings_cls(
        kafka_enabled=False,
        database_url=f"sqlite+aiosqlite:///{directory / 'service.sqlite3'}",
        jwt_secret=DEV_JWT_SECRET,
    )
    return create_app(settings)


def endpoints(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD aside), documented or not."""
    found: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):
        path = context.path_format
        assert path is not None, context
        found.update((method, path) for method in context.methods or () if method != "HEAD")
    return found


@pytest.mark.parametrize("service", list(SERVICES))
def test_every_endpoint_has_a_row(service: str, tmp_path: Path) -> None:
    served = {(service, m, p) for m, p in endpoints(service_app(service, tmp_path))}
    listed = {key for key in (*MATRIX, *PUBLIC) if key[0] == service}
    assert served - listed == set(), "endpoints without a row in MATRIX or PUBLIC"
    assert listed - served == set(), "rows for endpoints the service does not serve"


@pytest.fixture(params=list(SERVICES))
async def running(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[str, Client, Seeded]]:
    service: str = request.param
    app = service_app(service, tmp_path)
    runtime: ServiceRuntime = app.state.runtime
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            seeded = Seeded(await SEEDS[service](client, runtime))
            yield service, client, seeded


async def _call(
    client: Client,
    key: tuple[str, str, str],
    role: str,
    sub: str,
    seeded: Seeded,
    auth: dict[str, str],
) -> httpx.Response:
    url, body, headers = request_for(key, role, sub, seeded)
    method = key[1]
    if key[2] == "/v1/leads/import":
        return await client.request(
            method, url, content=b"email\nm@example.com\n", headers={**auth, **headers}
        )
    return await client.request(method, url, json=body, headers={**auth, **headers})


def _matches(expected: str, status: int) -> bool:
    if expected == "ok":
        return status not in (401, 403) and status < 500
    return status == int(expected)


async def test_authorization_matrix(running: tuple[str, Client, Seeded]) -> None:
    service, client, seeded = running
    wrong: list[str] = []
    for key in sorted(k for k in MATRIX if k[0] == service):
        where = f"{key[1]} {key[2]}"
        # the bad tokens, every one refused before any role or state is looked at
        for kind in BAD_TOKENS:
            r = await _call(client, key, "admin", "x", seeded, bad_header(kind))
            if r.status_code != 401:
                wrong.append(f"{where} [{kind}]: expected 401, got {r.status_code}")
        expected = cells(key)
        # "other" first: it must be refused before the owner's own calls change any state
        if expected["other"] != "-":
            role = OTHER_ROLE.get(key, DEFAULT_OTHER_ROLE)
            sub = f"{role}-other"
            r = await _call(client, key, role, sub, seeded, role_header(role, sub))
            if not _matches(expected["other"], r.status_code):
                wrong.append(
                    f"{where} [other {role}]: expected {expected['other']}, got "
                    f"{r.status_code} {r.text[:120]}"
                )
        for role in ROLES:
            sub = f"{role}-own"
            r = await _call(client, key, role, sub, seeded, role_header(role, sub))
            if not _matches(expected[role], r.status_code):
                wrong.append(
                    f"{where} [{role}]: expected {expected[role]}, got "
                    f"{r.status_code} {r.text[:120]}"
                )
    for key in sorted(k for k in PUBLIC if k[0] == service):
        for kind in BAD_TOKENS:
            url = key[2]
            if "{form_key}" in url:
                url = url.replace("{form_key}", "fk_unknown")
            r = await client.request(key[1], url, headers=bad_header(kind))
            if r.status_code in (401, 403) or r.status_code >= 500:
                wrong.append(f"{key[1]} {key[2]} (public) [{kind}]: got {r.status_code}")
    assert wrong == [], "\n".join(wrong)
