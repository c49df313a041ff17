"""Test helpers for this service's tests and the cross-service tests.

A real HTTP endpoint on 127.0.0.1 (a thread) that records what it receives, and helpers to
register a webhook and wait for its deliveries to settle.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from leadflow_shared.testing import auth_header

ALL_TYPES = ["*"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers each POST with the next scripted status (200 once the script runs out)."""

    server: ThreadingHTTPServer
    statuses: deque[int] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    redirect_to: str | None = None
    # Seconds to wait before answering (a slow endpoint).
    delay_s: float = 0.0

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"


def start_receiver() -> Receiver:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder[0]
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            receiver.received.append(
                Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            status = receiver.statuses.popleft() if receiver.statuses else 200
            self.send_response(status)
            if receiver.redirect_to is not None:
                self.send_header("location", receiver.redirect_to)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server=server)
    holder.append(receiver)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return receiver


async def register(
    client: httpx.AsyncClient,
    url: str,
    event_types: list[str] | None = None,
    *,
    sub: str = "crm",
    role: str = "integration",
) -> dict[str, Any]:
    r = await client.post(
        "/v1/webhooks",
        json={"url": url, "event_types": event_types or ALL_TYPES, "description": "test hook"},
        headers=auth_header(role, sub),
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, what: str = "condition"
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def deliveries_of(
    client: httpx.AsyncClient, subscription_id: str, sub: str = "crm"
) -> list[dict[str, Any]]:
    r = await client.get(
        f"/v1/webhooks/{subscription_id}/deliveries", headers=auth_header("integration", sub)
    )
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()
    return rows


async def settled(
    client: httpx.AsyncClient, subscription_id: str, count: int = 1, sub: str = "crm"
) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries exist and none is pending; return them, newest first."""
    rows: list[dict[str, Any]] = []

    async def done() -> bool:
        nonlocal rows
        rows = await deliveries_of(client, subscription_id, sub)
        return len(rows) >= count and all(d["status"] != "pending" for d in rows)

    await eventually(done, what="deliveries to settle")
    return rows
