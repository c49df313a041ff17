"""Service errors mapped to HTTP problems in one place.

Bodies: ``{"error": <code>, "detail": <what was wrong and how to fix it>,
"fields": [{"field": ..., "message": ...}]}``. Bad input is always a 4xx, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


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
    """Map validation errors, service errors and stray HTTP errors to problem bodies."""

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

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return problem(500, "internal_error", "unexpected error; see the service log")
