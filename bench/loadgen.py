"""A lean async HTTP/1.1 load generator: keep-alive connections to 127.0.0.1, open and
closed loop.

Why not httpx: on two shared cores the load generator competes with the system it
measures, and httpx spends several times more CPU per request than these ~150 lines of
asyncio streams. It speaks just enough HTTP/1.1 for JSON APIs served by uvicorn
(Content-Length or chunked bodies, keep-alive). Every wait is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The request could not be completed (connection refused, reset, timed out …)."""


@dataclass
class Response:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


# uvicorn closes a keep-alive connection after 5 s without a request (its
# ``timeout_keep_alive``). A request written on such a connection at that moment meets the
# server's close and reads 0 bytes (IncompleteReadError) although the server never saw it:
# the "connection reset on a keep-alive connection" the bench used to count as failed
# posts. Like any pooled HTTP client, never reuse a connection idle longer than this.
MAX_IDLE_S = 2.0


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class HttpPool:
    """At most ``size`` concurrent requests to one ``http://127.0.0.1:PORT`` origin."""

    def __init__(self, base_url: str, size: int = 64, timeout_s: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError(f"the load generator only talks to 127.0.0.1: {base_url}")
        self.host = "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(size)
        self._all: set[_Conn] = set()

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
        conn = _Conn(reader, writer)
        self._all.add(conn)
        return conn

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        async with self._slots:
            conn = self._reusable() or await self._connect()
            try:
                async with asyncio.timeout(timeout_s or self.timeout_s):
                    response, keep = await self._exchange(conn, method, path, body, headers)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                self._drop(conn)
                raise HttpError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            except BaseException:
                self._drop(conn)
                raise
            if keep:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                self._drop(conn)
            return response

    def _reusable(self) -> _Conn | None:
        """The most recently used idle connection, closing those idle too long."""
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.idle_since < MAX_IDLE_S:
                return conn
            self._drop(conn)
        return None

    def _drop(self, conn: _Conn) -> None:
        self._all.discard(conn)
        conn.close()

    async def _exchange(
        self,
        conn: _Conn,
        method: str,
        path: str,
        body: bytes | None,
        headers: dict[str, str] | None,
    ) -> tuple[Response, bool]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn.writer.write(head + body if body is not None else head)
        await conn.writer.drain()
        raw = await conn.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = raw.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        response_headers: dict[str, str] = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                response_headers[name.strip().lower()] = value.strip()
        if response_headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await conn.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await conn.reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(chunk[:-2])
            payload = b"".join(chunks)
        elif "content-length" in response_headers:
            payload = await conn.reader.readexactly(int(response_headers["content-length"]))
        elif method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            payload = b""
        else:  # body until close
            payload = await conn.reader.read()
            return Response(status, payload), False
        keep = response_headers.get("connection", "").lower() != "close"
        return Response(status, payload), keep

    async def post_json(
        self, path: str, data: Any, headers: dict[str, str] | None = None
    ) -> Response:
        return await self.request(
            "POST",
            path,
            body=json.dumps(data).encode(),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, headers=headers)

    async def close(self) -> None:
        for conn in list(self._all):
            conn.close()
        self._all.clear()
        self._idle.clear()


@dataclass
class LoopResult:
    """What a load loop did: requests started, completed by outcome, their latencies."""

    offered: int = 0
    ok: int = 0
    non_2xx: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    late_starts: int = 0  # open loop: requests started > 50 ms after their scheduled time
    first_error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "ok": self.ok,
            "non_2xx": self.non_2xx,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "ok_per_s": round(self.ok / self.seconds, 1) if self.seconds else None,
            "late_starts": self.late_starts,
            "first_error": self.first_error,
        }


# A request function gets the sequence number and the scheduled start (perf_counter) and
# returns the response (or raises HttpError).
RequestFn = Callable[[int], Awaitable[Response]]
OnResponse = Callable[[int, Response, float], None]


async def open_loop(
    rate_per_s: float,
    duration_s: float,
    send: RequestFn,
    on_response: OnResponse | None = None,
    *,
    finish_timeout_s: float = 30.0,
) -> LoopResult:
    """Start request ``i`` at ``start + i / rate`` whether or not earlier ones finished.

    Latency counts from the scheduled start, so a slow server or a full connection pool
    shows as latency (no coordinated omission). Requests still running
    ``finish_timeout_s`` after the last start are cancelled and counted as errors.
    """
    result = LoopResult()
    total = max(1, int(rate_per_s * duration_s))
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int, scheduled: float) -> None:
        try:
            response = await send(i)
        except HttpError as exc:
            result.errors += 1
            result.first_error = result.first_error or str(exc)
            return
        now = time.perf_counter()
        if 200 <= response.status < 300:
            result.ok += 1
            result.latencies_ms.append((now - scheduled) * 1000)
        else:
            result.non_2xx += 1
            result.first_error = result.first_error or (
                f"HTTP {response.status}: {response.body[:200]!r}"
            )
        if on_response is not None:
            on_response(i, response, now)

    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i / rate_per_s
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            result.late_starts += 1
        task = asyncio.create_task(one(i, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        result.offered += 1
    if tasks:
        _, pending = await asyncio.wait(set(tasks), timeout=finish_timeout_s)
        for task in pending:
            task.cancel()
        result.errors += len(pending)
        if pending:
            await asyncio.wait(pending, timeout=5)
    result.seconds = time.perf_counter() - start
    return result


async def closed_loop(
    concurrency: int,
    duration_s: float,
    send: RequestFn,
    on_response: OnResponse | None = None,
) -> LoopResult:
    """``concurrency`` workers, each sending its next request when the previous answered,
    for ``duration_s``: the maximum throughput at that concurrency."""
    result = LoopResult()
    counter = iter(range(10**12))
    start = time.perf_counter()
    end = start + duration_s

    async def worker() -> None:
        while time.perf_counter() < end:
            i = next(counter)
            result.offered += 1
            began = time.perf_counter()
            try:
                response = await send(i)
            except HttpError as exc:
                result.errors += 1
                result.first_error = result.first_error or str(exc)
                await asyncio.sleep(0.01)
                continue
            now = time.perf_counter()
            if 200 <= response.status < 300:
                result.ok += 1
                result.latencies_ms.append((now - began) * 1000)
            else:
                result.non_2xx += 1
                result.first_error = result.first_error or (
                    f"HTTP {response.status}: {response.body[:200]!r}"
                )
            if on_response is not None:
                on_response(i, response, now)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    _, pending = await asyncio.wait(workers, timeout=duration_s + 35)
    for task in pending:
        task.cancel()
    result.seconds = time.perf_counter() - start
    return result
