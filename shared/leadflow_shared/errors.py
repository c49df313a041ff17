"""Service errors mapped to HTTP problems in one place, and documented as such.

Bodies: ``{"error": <code>, "detail": <what was wrong and how to fix it>,
"fields": [{"field": ..., "message": ...}]}``. Bad input is always a 4xx, never a 500.

The OpenAPI document says the same (:func:`install_openapi`): every error response is a
:class:`Problem`, authenticated operations document 401 and, where a role is refused, 403;
routes add the statuses only they return with ``responses=problem_responses(404, 409)``.
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)


class ProblemField(BaseModel):
    field: str = Field(description="the bad input, dotted (`utm.source`, `rules.0.pool`)")
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    error: str = Field(
        description="machine-readable code: unauthorized, forbidden, not_found, conflict, "
        "invalid_input, rate_limited, payload_too_large, unsupported_media_type, "
        "database_unavailable, broker_unavailable, …"
    )
    detail: str = Field(description="what was wrong and how to fix it")
    fields: list[ProblemField] = Field(
        default_factory=list, description="each bad input field (422 only; absent otherwise)"
    )


PROBLEM_DESCRIPTIONS: dict[int, str] = {
    400: "bad request",
    401: "missing, malformed, expired or wrongly signed bearer token",
    403: "the token's role (or owner) may not do this",
    404: "unknown id",
    409: "the current state forbids this action",
    413: "the body is over the documented size limit",
    415: "a content type this operation does not take",
    422: "invalid input; `fields` names each bad field",
    429: "rate limited; try again later",
    503: "a dependency (database or broker) is unavailable",
}


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status answered with a :class:`Problem` body.

    ``descriptions`` override the default wording, keyed ``s404="..."``.
    """
    return {
        status: {
            "model": Problem,
            "description": descriptions.get(f"s{status}", PROBLEM_DESCRIPTIONS.get(status, "")),
        }
        for status in statuses
    }


class ServiceError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or []


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"

    @classmethod
    def field(cls, field: str, message: str) -> InvalidInput:
        return cls(f"{field}: {message}", fields=[{"field": field, "message": message}])


class TooManyRequests(ServiceError):
    status_code = 429
    code = "rate_limited"


# How long a client is told to wait (``Retry-After``) when the database is unreachable,
# and how often (at most) a service logs that it answered so.
DATABASE_RETRY_AFTER_S = 2
DATABASE_WARNING_EVERY_S = 10.0
_db_warned = [float("-inf")]


_SQLITE_UNAVAILABLE = ("database is locked", "unable to open database", "disk I/O error")


def is_database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says the database cannot be reached: a refused or
    lost connection, a pool or connect timeout. Errors the database itself raised about a
    statement (a constraint, bad SQL) are not."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.DBAPIError) and isinstance(current.orig, sqlite3.Error):
            current = current.orig
        if isinstance(current, sqlite3.Error):
            # SQLite reports bugs as OperationalError too ("no such column"): only a file
            # that is busy or cannot be opened is the database being away.
            return isinstance(current, sqlite3.OperationalError) and any(
                marker in str(current) for marker in _SQLITE_UNAVAILABLE
            )
        if isinstance(
            current,
            sa_exc.OperationalError
            | sa_exc.InterfaceError
            | sa_exc.TimeoutError
            | sa_exc.DisconnectionError
            | asyncpg.PostgresConnectionError
            | asyncpg.InterfaceError
            | asyncpg.CannotConnectNowError
            | OSError,
        ):
            return True
        wrapped = getattr(current, "orig", None) or getattr(current, "error", None)
        current = (
            wrapped
            if isinstance(wrapped, BaseException)
            else (current.__cause__ or current.__context__)
        )
    return False


def problem(
    status: int,
    code: str,
    detail: str,
    fields: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"error": code, "detail": detail}
    if fields:
        body["fields"] = fields
    return JSONResponse(status_code=status, content=body, headers=headers)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "form"}:
        parts = parts[1:] or parts
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Map validation errors, service errors and stray HTTP errors to problem bodies (and
    document them so in the app's OpenAPI)."""
    install_openapi(app)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": "body" if err.get("type") == "json_invalid" else _field_name(err["loc"]),
                "message": str(err.get("msg", "invalid")),
            }
            for err in exc.errors()
        ]
        names = ", ".join(sorted({f["field"] for f in fields}))
        return problem(422, "invalid_input", f"invalid input: {names}", fields)

    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return problem(exc.status_code, exc.code, exc.detail, exc.fields, headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (e.g. invalid UTF-8): invalid input.
            return problem(
                422,
                "invalid_input",
                f"invalid input: body ({exc.detail})",
                [{"field": "body", "message": str(exc.detail)}],
            )
        codes = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
        return problem(
            exc.status_code,
            codes.get(exc.status_code, "error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_unavailable(exc):
            raise exc  # not a connectivity problem: the 500 handler below answers it
        now = time.monotonic()
        if now - _db_warned[0] >= DATABASE_WARNING_EVERY_S:  # not one line per request
            log.warning(
                "database unavailable; answering 503",
                extra={"fields": {"error_type": type(exc).__name__, "path": request.url.path}},
            )
            _db_warned[0] = now
        return problem(
            503,
            "database_unavailable",
            "the database cannot be reached; retry after the time in Retry-After "
            "(with the same Idempotency-Key for a POST)",
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )

    for kind in (sa_exc.DBAPIError, sa_exc.TimeoutError, asyncpg.PostgresError, OSError):
        app.add_exception_handler(kind, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "unexpected error; see the service log")


PROBLEM_REF = "#/components/schemas/Problem"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def api_routes(app: FastAPI) -> Iterator[APIRoute]:
    """Every API route of ``app``, with its full path (included routers flattened)."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.route, APIRoute):
            yield context.route


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _access(route: APIRoute) -> tuple[bool, frozenset[str] | None]:
    """(needs a token, the roles admitted when a role is required)."""
    from leadflow_shared.auth import ROLES, current_principal

    authenticated = False
    admitted: frozenset[str] | None = None
    for call in _calls(route.dependant):
        if call is current_principal:
            authenticated = True
        elif getattr(call, "__qualname__", "") == "require_roles.<locals>.dependency":
            allowed = inspect.getclosurevars(call).nonlocals.get("allowed")
            if isinstance(allowed, frozenset) and not set(ROLES) <= allowed:
                admitted = allowed if admitted is None else admitted & allowed
    return authenticated, admitted


def _problem_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": PROBLEM_REF}}}


DATABASE_UNAVAILABLE_DESCRIPTION = (
    "database_unavailable: the service's database does not answer; retry after Retry-After"
)


def document_problems(app: FastAPI, schema: dict[str, Any]) -> dict[str, Any]:
    """Make a generated OpenAPI document tell the truth about errors.

    - 422 is a :class:`Problem` (not FastAPI's ``HTTPValidationError``);
    - every other error status a route documents without a body gets a :class:`Problem`;
    - an operation that needs a token documents 401, and 403 when it admits only some roles
      (the description names them; routes that refuse an owner add 403 themselves);
    - every ``/v1/`` operation documents 503 ``database_unavailable`` with ``Retry-After``.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem_schema.pop("$defs", {}))
    components["Problem"] = problem_schema
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        authenticated, admitted = _access(route)
        for method in route.methods or ():
            operation = schema.get("paths", {}).get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if authenticated:
                responses.setdefault(
                    "401",
                    {
                        "description": PROBLEM_DESCRIPTIONS[401],
                        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
                    },
                )
            if admitted is not None:
                responses.setdefault(
                    "403",
                    {
                        "description": f"{PROBLEM_DESCRIPTIONS[403]}; admits "
                        + ", ".join(sorted(admitted))
                    },
                )
            if route.path_format.startswith("/v1/"):
                # Every API operation reads or writes its service's database.
                unavailable = responses.setdefault("503", {"description": ""})
                described = unavailable.get("description") or ""
                if "database" not in described:
                    unavailable["description"] = "; ".join(
                        filter(None, [described, DATABASE_UNAVAILABLE_DESCRIPTION])
                    )
                unavailable.setdefault("headers", {})["Retry-After"] = {
                    "description": "seconds after which to try again",
                    "schema": {"type": "integer"},
                }
            for status, response in responses.items():
                if status == "422":
                    response["description"] = PROBLEM_DESCRIPTIONS[422]
                    response["content"] = _problem_content()
                elif status.isdigit() and int(status) >= 400 and "content" not in response:
                    response["content"] = _problem_content()
    used = str(schema.get("paths", {}))
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        if f"#/components/schemas/{name}" not in used:
            components.pop(name, None)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`document_problems`' version of the app's generated OpenAPI document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(app, generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class RejectNulInPath:
    """ASGI middleware: a NUL character in the URL path is a 422, before any route runs.

    No id holds one, and PostgreSQL text cannot (a query with one fails in the driver), so
    ``GET /v1/leads/a%00b`` would otherwise be a 500 on PostgreSQL. Bodies and query
    parameters are validated per field (:mod:`leadflow_shared.validation`, patterns).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "\x00" in scope.get("path", ""):
            response = problem(
                422,
                "invalid_input",
                "invalid input: path (NUL characters are not allowed)",
                [{"field": "path", "message": "must not contain NUL characters"}],
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
