"""Schemathesis against every service's OpenAPI, in process (ASGI, SQLite, no broker).

Each operation of each service gets a bounded number of generated requests, valid and
invalid (schemathesis' positive and negative modes), sent with an admin token so they
reach the handlers. Every response must be: not a 5xx, of a status the operation
documents, of the documented content type and shape. Hostile inputs the generator is
unlikely to produce (64-bit overflow, NUL bytes, invalid UTF-8, deep nesting, huge
strings) are sent explicitly as well.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from leadflow_console.main import create_app as console_app
from leadflow_console.settings import ConsoleSettings
from leadflow_deals.main import create_app as deals_app
from leadflow_deals.settings import DealsSettings
from leadflow_intake.main import create_app as intake_app
from leadflow_intake.settings import IntakeSettings
from leadflow_routing.main import create_app as routing_app
from leadflow_routing.settings import RoutingSettings
from leadflow_scoring.main import create_app as scoring_app
from leadflow_scoring.settings import ScoringSettings
from leadflow_shared.settings import DEV_JWT_SECRET, ServiceSettings
from leadflow_shared.testing import auth_header
from leadflow_webhooks.main import create_app as webhooks_app
from leadflow_webhooks.settings import WebhooksSettings

SERVICES: dict[str, tuple[Callable[..., FastAPI], type[ServiceSettings]]] = {
    "lead-intake": (intake_app, IntakeSettings),
    "scoring": (scoring_app, ScoringSettings),
    "routing": (routing_app, RoutingSettings),
    "deals": (deals_app, DealsSettings),
    "webhooks": (webhooks_app, WebhooksSettings),
    "console": (console_app, ConsoleSettings),
}
# Generated requests per operation and mode; the whole module takes about 45 s on 2 cores.
MAX_EXAMPLES = 40
ADMIN = auth_header("admin", "fuzzer")
# What every response is held to. Left out on purpose: positive_data_acceptance (business
# rules a schema cannot say, e.g. a CSV without an email column, answer 422 to schema-valid
# input) and negative_data_rejection (the contract accepts enumerated values in any case,
# and unknown query parameters are ignored, as FastAPI does).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# A documented 5xx that is the right answer in this in-process setup (no broker).
EXPECTED_5XX = {("console", "GET", "/v1/topics"): 503}


def service_app(name: str, directory: Path) -> FastAPI:
    create_app, settings_cls = SERVICES[name]
    settings = settings_cls(
        kafka_enabled=False,
        database_url=f"sqlite+aiosqlite:///{directory / 'service.sqlite3'}",
        jwt_secret=DEV_JWT_SECRET,
    )
    return create_app(settings)


def _operations() -> list[Any]:
    """(service, method, path) of every documented operation, read without starting apps."""
    found: list[Any] = []
    for name in SERVICES:
        document = service_app(name, Path("/nonexistent")).openapi()
        for path, operations in document["paths"].items():
            found.extend(
                pytest.param(name, method.upper(), path, id=f"{name} {method.upper()} {path}")
                for method in operations
            )
    return found


class Schemas:
    """One running app (lifespan started) and its loaded schema per service, on demand."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self.tmp_path_factory = tmp_path_factory
        self.loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self.loaded:
            app = service_app(name, self.tmp_path_factory.mktemp(name))
            # Loading the document starts the app's lifespan (migrations, workers) in
            # schemathesis' event-loop thread, where every request of this module is served.
            schema = schemathesis.openapi.from_asgi("/openapi.json", app)
            schema.config.generation.update(database="none")
            self.loaded[name] = schema
        return self.loaded[name]


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Schemas]:
    loaded = Schemas(tmp_path_factory)
    yield loaded
    asgi.shutdown_lifespans()


@pytest.mark.parametrize("service,method,path", _operations())
def test_operation_conforms_to_its_openapi(
    schemas: Schemas, service: str, method: str, path: str
) -> None:
    operation = schemas[service][path][method]
    expected_5xx = EXPECTED_5XX.get((service, method, path))
    checks = [c for c in CHECKS if expected_5xx is None or c is not not_a_server_error]
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case[Any]) -> None:
            case.call_and_validate(headers=ADMIN, checks=checks)

        try:
            check()
        except Unsatisfiable:
            # Nothing invalid can be built for this operation (no parameters, no body).
            if mode is GenerationMode.POSITIVE:
                raise


@pytest.mark.parametrize("service", ["lead-intake", "scoring", "routing", "deals", "webhooks"])
def test_every_api_operation_documents_the_database_503(service: str) -> None:
    """A client generated from the OpenAPI knows every /v1 operation may answer 503
    ``database_unavailable`` with ``Retry-After``."""
    document = service_app(service, Path("/nonexistent")).openapi()
    operations = [
        (path, method, op)
        for path, ops in document["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
    ]
    assert operations
    for path, method, op in operations:
        unavailable = op["responses"].get("503")
        assert unavailable, (method, path)
        assert "database_unavailable" in unavailable["description"], (method, path)
        assert "Retry-After" in unavailable["headers"], (method, path)
        assert unavailable["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }
