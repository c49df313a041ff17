"""lead-intake's own bench: ``POST /v1/leads`` throughput and the streamed CSV import.

    .venv/bin/python bench/intake_import.py post   [--database sqlite|postgres] [--seconds 10]
    .venv/bin/python bench/intake_import.py bare   [--seconds 10]
    .venv/bin/python bench/intake_import.py import [--database sqlite|postgres] [--rows 100000]
                                                   [--live-rate 20]

``post``: closed loop, ``--concurrency`` keep-alive connections posting new leads for
``--seconds`` against a uvicorn'd lead-intake with Kafka disabled. ``bare``: the same load
against a bare FastAPI endpoint (JSON body into a pydantic model, 202, no database) — the
baseline. ``import``: a
generated CSV (never stored) streamed as the request body; time until the answer and until
the import reports ``done``, with the rows checked, while live leads are posted open loop
at ``--live-rate`` per second (their latency is the bulk lane's cost to live traffic).
Every figure comes with the server's CPU seconds (from /proc), so a machine shared with
other work still gives a fair per-lead cost. Writes
``bench/results/intake-<mode>-<UTC timestamp>.json``; servers bind 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from leadflow_shared.auth import mint_token
from leadflow_shared.broker import free_port
from leadflow_shared.settings import DEV_JWT_SECRET

RESULTS = Path(__file__).parent / "results"
PG_ADMIN = os.environ.get("LEADFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TOKEN = mint_token(DEV_JWT_SECRET, sub="bench", role="integration")
HEADERS = {"Authorization": f"Bearer {TOKEN}"}

BARE_APP = """
from fastapi import FastAPI
from pydantic import BaseModel, EmailStr

class Lead(BaseModel):
    email: EmailStr
    first_name: str | None = None
    company: str | None = None
    country: str | None = None
    employees: int | None = None

app = FastAPI()

@app.post("/v1/leads", status_code=202)
async def post_lead(lead: Lead) -> dict[str, str]:
    return {"lead_id": "x", "status": "accepted"}

@app.get("/readyz")
async def readyz() -> dict[str, str]:
    return {"status": "ready"}
"""


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    if len(samples_ms) < 2:
        return {"n": len(samples_ms)}
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return {
        "n": len(samples_ms),
        "p50": round(q[49], 2),
        "p99": round(q[98], 2),
        "max": round(max(samples_ms), 2),
    }


class Server:
    """A uvicorn process on 127.0.0.1 and its CPU/RSS as read from /proc."""

    def __init__(
        self, app: str, env: dict[str, str], cwd: Path | None = None, *, factory: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                *(["--factory"] if factory else []),
                app,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env={**os.environ, **env},
            cwd=cwd,
        )
        self.ps = psutil.Process(self.proc.pid)

    async def ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def database_url(kind: str, workdir: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'intake.sqlite3'}", None
    name = f"bench_intake_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}", name


async def drop_database(name: str | None) -> None:
    if name is None:
        return
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def intake_env(url: str, workdir: Path, **extra: str) -> dict[str, str]:
    return {
        "LEADFLOW_KAFKA_ENABLED": "false",
        "DATABASE_URL_LEAD_INTAKE": url,
        "LEADFLOW_DATA_DIR": str(workdir),
        "LEADFLOW_LOG_LEVEL": "WARNING",
        **extra,
    }


async def closed_loop(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """``concurrency`` keep-alive connections each posting a new lead as soon as the
    previous one is answered. Raw HTTP/1.1 over asyncio streams rather than httpx: the
    load generator shares the two cores with the server, so it must cost far less than
    what it measures (about 30 µs a request against httpx's 500)."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    codes: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    run = secrets.token_hex(3)

    async def connection(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        i = 0
        try:
            while time.monotonic() < deadline:
                i += 1
                body = json.dumps(
                    {
                        "email": f"b{run}-{n}-{i}@example.com",
                        "first_name": "Bench",
                        "company": "Acme",
                        "country": "DE",
                        "employees": 120,
                    }
                ).encode()
                head = (
                    f"POST /v1/leads HTTP/1.1\r\nHost: {host}\r\n"
                    f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                started = time.perf_counter()
                writer.write(head + body)
                status_line = await reader.readuntil(b"\r\n")
                headers = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in headers.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - started) * 1000)
                code = int(status_line.split()[1])
                codes[code] = codes.get(code, 0) + 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - began
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    return {
        "requests": sum(codes.values()),
        "ok": ok,
        "codes": codes,
        "elapsed_s": round(elapsed, 2),
        "rate_per_s": round(ok / elapsed, 1),
        "latency_ms": percentiles(latencies),
    }


async def mean_group_size(url: str) -> float | None:
    """Mean live captures per transaction (group commit), from the service's metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url}/metrics")).text
    values = {}
    for line in text.splitlines():
        for name in ("sum", "count"):
            if line.startswith(f"leadflow_intake_capture_group_leads_{name} "):
                values[name] = float(line.split()[1])
    if not values.get("count"):
        return None
    return round(values["sum"] / values["count"], 2)


async def bench_post(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    if args.mode == "bare":
        (workdir / "bare_app.py").write_text(BARE_APP)
        server = Server("bare_app:app", {"PYTHONPATH": str(workdir)}, cwd=workdir)
        db_name = None
    else:
        url, db_name = await database_url(args.database, workdir)
        server = Server("leadflow_intake.main:create_app", intake_env(url, workdir), factory=True)
    try:
        await server.ready()
        await closed_loop(server.url, 2, args.concurrency)  # warm-up
        cpu0 = server.cpu_s()
        result = await closed_loop(server.url, args.seconds, args.concurrency)
        cpu = server.cpu_s() - cpu0
        result["server_cpu_s"] = round(cpu, 2)
        result["server_cpu_ms_per_request"] = round(cpu * 1000 / max(result["requests"], 1), 3)
        # What one fully used core would sustain at that cost.
        result["rate_per_cpu_s"] = round(result["requests"] / cpu, 1) if cpu else None
        result["peak_rss_mb"] = server.peak_rss_mb()
        if args.mode == "post":
            result["leads_per_transaction"] = await mean_group_size(server.url)
        return result
    finally:
        server.stop()
        await drop_database(db_name)


HEADER = "Email Address,First Name,Last Name,Company Name,Country/Region,Employees,utm_source\n"


async def csv_body(rows: int, bad_every: int, run: str) -> AsyncIterator[bytes]:
    """The CSV, generated as it is sent (about 64 KiB a piece); never held whole."""
    yield HEADER.encode()
    lines: list[str] = []
    for i in range(1, rows + 1):
        email = "not-an-email" if bad_every and i % bad_every == 0 else f"i{run}-{i}@example.com"
        lines.append(f"{email},Ann{i},Lee,Acme {i % 500},DE,{i % 5000},tradeshow\n")
        if len(lines) == 800:
            yield "".join(lines).encode()
            lines = []
            await asyncio.sleep(0)
    if lines:
        yield "".join(lines).encode()


async def live_leads(url: str, rate: float, stop: asyncio.Event) -> list[float]:
    """Open loop: a live lead every 1/rate s until ``stop``; each one's latency in ms."""
    latencies: list[float] = []
    run = secrets.token_hex(3)

    async def one(client: httpx.AsyncClient, i: int) -> None:
        started = time.perf_counter()
        r = await client.post(
            f"{url}/v1/leads", json={"email": f"live{run}-{i}@example.com"}, headers=HEADERS
        )
        if r.status_code == 202:
            latencies.append((time.perf_counter() - started) * 1000)

    async with httpx.AsyncClient(timeout=60) as client:
        tasks: list[asyncio.Task[None]] = []
        began = time.perf_counter()
        i = 0
        while not stop.is_set():
            tasks.append(asyncio.create_task(one(client, i)))
            i += 1
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
        await asyncio.gather(*tasks)
    return latencies


async def bench_import(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    url, db_name = await database_url(args.database, workdir)
    server = Server("leadflow_intake.main:create_app", intake_env(url, workdir), factory=True)
    run = secrets.token_hex(3)
    try:
        await server.ready()
        cpu0 = server.cpu_s()
        stop_live = asyncio.Event()
        live = asyncio.create_task(live_leads(server.url, args.live_rate, stop_live))
        began = time.perf_counter()
        async with httpx.AsyncClient(timeout=600) as client:
            r = await client.post(
                f"{server.url}/v1/leads/import",
                content=csv_body(args.rows, args.bad_every, run),
                headers={**HEADERS, "Content-Type": "text/csv", "Prefer": "respond-async"},
            )
            answered = time.perf_counter() - began
            assert r.status_code in (200, 202), r.text
            import_id = r.json()["import_id"]
            status: dict[str, Any] = r.json()
            deadline = time.monotonic() + 900
            while status["status"] not in ("done", "failed") and time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                status = (
                    await client.get(f"{server.url}/v1/leads/imports/{import_id}", headers=HEADERS)
                ).json()
        done = time.perf_counter() - began
        stop_live.set()
        live_ms = await live
        cpu = server.cpu_s() - cpu0
        bad = args.rows // args.bad_every if args.bad_every else 0
        return {
            "rows": args.rows,
            "status": status["status"],
            "accepted": status.get("accepted"),
            "rejected_count": status.get("rejected_count"),
            "counts_right": status.get("accepted") == args.rows - bad
            and status.get("rejected_count") == bad,
            "answered_s": round(answered, 2),
            "done_s": round(done, 2),
            "rows_per_s": round(args.rows / done, 1),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_us_per_row": round(cpu * 1e6 / args.rows, 1),
            "peak_rss_mb": server.peak_rss_mb(),
            "live_rate_per_s": args.live_rate,
            "live_latency_ms": percentiles(live_ms),
        }
    finally:
        server.stop()
        await drop_database(db_name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["post", "bare", "import"])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad-every", type=int, default=1000, help="one invalid row per N")
    parser.add_argument("--live-rate", type=float, default=20, help="live leads/s during import")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadflow-intake-bench-") as tmp:
        workdir = Path(tmp)
        if args.mode == "import":
            result = await bench_import(args, workdir)
        else:
            result = await bench_post(args, workdir)
    report = {
        "mode": args.mode,
        "database": None if args.mode == "bare" else args.database,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        **result,
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"intake-{args.mode}-{stamp}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
