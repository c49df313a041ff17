"""`leadflow up` (what `make run` calls): ready line, every service ready, clean SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from leadflow_launcher.system import SERVICES


def test_leadflow_up_starts_everything_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    offset = random.randint(20_000, 30_000)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL_", "KAFKA_BOOTSTRAP_SERVERS"))
    }
    leadflow = Path(sys.executable).parent / "leadflow"
    process = subprocess.Popen(
        [str(leadflow), "up", "--data-dir", str(tmp_path), "--port-offset", str(offset)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("leadflow: ready"):
                break
        output = "".join(lines)
        assert "leadflow: ready" in output, output
        assert "demo organisation loaded" in output and "admin token" in output
        for service in SERVICES:
            url = f"http://127.0.0.1:{service.port + offset}"
            assert url in output
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60)
        assert process.returncode == 0, rest
        assert "leadflow: stopped" in rest
        for service in SERVICES:
            try:
                httpx.get(f"http://127.0.0.1:{service.port + offset}/healthz", timeout=1)
                raise AssertionError(f"{service.name} still answers after SIGTERM")
            except httpx.TransportError:
                pass
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
