"""Structured JSON logs carrying the trace id, W3C ``traceparent`` propagation, metrics.

Logs never carry personal data or secrets: callers log ids, types and counts only. As a
safeguard against a slip (a library or a new log line), every line is also scrubbed of
email addresses, JWTs, bearer credentials and webhook secrets (:func:`redact`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "traceparent", default=None
)
# The lane of the work in hand. Events caused by bulk work (a CSV import) are stamped with
# the CloudEvents extension attribute ``lane: bulk`` (header ``ce_lane``), so every
# consumer downstream serves them after live events, as a trace id propagates.
LANE_HEADER = "ce_lane"
BULK_LANE = "bulk"
_current_lane: contextvars.ContextVar[str | None] = contextvars.ContextVar("lane", default=None)

# What :func:`redact` removes from every log line, each checked only when its marker occurs.
_REDACTIONS: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("eyJ", re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), "[redacted-jwt]"),
    ("earer", re.compile(r"\b([Bb]earer)(\s|%20|\+)+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    ("whsec_", re.compile(r"whsec_[A-Za-z0-9+/=%]+"), "whsec_[redacted]"),
    (
        "@",
        re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        "[redacted-email]",
    ),
    (
        "%40",
        re.compile(r"[A-Za-z0-9._%+'-]+%40[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
        "[redacted-email]",
    ),
)
# Libraries that log values (SQL parameters, form fields, URLs) at DEBUG or INFO: kept at
# WARNING whatever the level, so LEADFLOW_LOG_LEVEL=DEBUG cannot leak what they carry.
_VALUE_LOGGERS = (
    "aiosqlite",
    "sqlalchemy.engine",
    "python_multipart",
    "multipart",
    "httpx",
    "httpcore",
)

HTTP_REQUESTS = Counter(
    "leadflow_http_requests_total", "HTTP requests served", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "leadflow_http_request_seconds", "HTTP request duration", ["method", "route"]
)


def child_traceparent(parent: str | None) -> str:
    """A traceparent continuing ``parent``'s trace with a new span (a new trace if invalid)."""
    match = _TRACEPARENT.match(parent or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def current_traceparent() -> str | None:
    """The traceparent of the request or message being handled, if any."""
    return _current_traceparent.get()


def current_trace_id() -> str | None:
    tp = _current_traceparent.get()
    return tp.split("-")[1] if tp else None


@contextmanager
def trace_context(parent: str | None) -> Iterator[str]:
    """Run a block as a new span of ``parent``'s trace."""
    token = _current_traceparent.set(child_traceparent(parent))
    try:
        yield _current_traceparent.get() or ""
    finally:
        _current_traceparent.reset(token)


def current_lane() -> str | None:
    """``"bulk"`` while handling bulk-lane events, else None (live)."""
    return _current_lane.get()


@contextmanager
def use_lane(lane: str | None) -> Iterator[None]:
    """Run a block in ``lane``: events staged in it carry ``ce_lane``."""
    token = _current_lane.set(lane)
    try:
        yield
    finally:
        _current_lane.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, service, trace_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info and record.exc_info[0] is not None:
            entry["error_type"] = record.exc_info[0].__name__
            # Where it failed, without the exception's message: messages can carry input
            # values (SQL parameters, personal data), frames carry only our code.
            entry["stack"] = "".join(traceback.format_tb(record.exc_info[2]))[-4000:]
        return redact(json.dumps(entry, default=str))


def redact(line: str) -> str:
    """``line`` without email addresses, JWTs, bearer credentials or webhook secrets."""
    for marker, pattern, replacement in _REDACTIONS:
        if marker in line:
            line = pattern.sub(replacement, line)
    return line


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route every logger (ours, uvicorn's, aiokafka's) through the JSON formatter."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's access log repeats the path (which may carry ids); ours logs the route.
    logging.getLogger("uvicorn.access").setLevel("WARNING")
    logging.getLogger("aiokafka").setLevel("WARNING")
    for name in _VALUE_LOGGERS:
        logging.getLogger(name).setLevel("WARNING")


def log_fields(**fields: Any) -> dict[str, Any]:
    """``extra=`` for structured fields: ``log.info("msg", extra=log_fields(lead_id=...))``."""
    return {"fields": fields}


class TracingMiddleware:
    """Continue the caller's trace (``traceparent``), echo it back, count requests.

    Plain ASGI rather than ``BaseHTTPMiddleware``: that one runs every request through an
    extra task and memory stream, a cost measured on the hot ``POST /v1/leads``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        parent = None
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                parent = value.decode("latin-1")
                break
        status = 500
        with trace_context(parent) as traceparent:
            echoed = (b"traceparent", traceparent.encode())

            async def send_with_trace(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    message = {**message, "headers": [*message.get("headers", ()), echoed]}
                await send(message)

            try:
                await self.app(scope, receive, send_with_trace)
            finally:
                route = scope.get("route")
                path = getattr(route, "path", "unmatched")
                method = scope.get("method", "")
                HTTP_REQUESTS.labels(method, path, str(status)).inc()
                HTTP_LATENCY.labels(method, path).observe(time.perf_counter() - started)
