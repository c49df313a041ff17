"""`leadflow up` (what `make run` calls): ready line, every service ready, a killed service
restarted by the supervisor and shown in the console, a stop in order on Ctrl-C; the
supervisor's backoff and crash-loop rule on stand-in processes."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from leadflow_launcher.supervisor import CrashLoop, RestartPolicy, Supervisor
from leadflow_launcher.system import SERVICES, RunningService, ServiceDef, System
from tests.helpers import MANAGER


def _errors_while_stopping(log: Path) -> list[str]:
    """Error lines the service logged after it began shutting down (the broker must still
    be there while the services stop)."""
    lines = log.read_text(errors="replace").splitlines()
    start = max(i for i, line in enumerate(lines) if "Shutting down" in line)
    return [
        line
        for line in lines[start:]
        if line.startswith("{") and json.loads(line).get("level") in {"error", "critical"}
    ]


def _shutdown_at(log: Path) -> str:
    """When the service's log says its shutdown completed (ISO timestamp)."""
    for line in log.read_text(errors="replace").splitlines():
        if "Application shutdown complete" in line:
            return str(json.loads(line)["ts"])
    raise AssertionError(f"{log.name} has no completed shutdown")


def test_leadflow_up_supervises_and_stops_in_order_on_ctrl_c(tmp_path: Path) -> None:
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
        start_new_session=True,  # its own process group, as a shell gives a foreground job
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
        # kill -9 one service: the supervisor restarts it and the console shows it.
        console = f"http://127.0.0.1:{8080 + offset}"
        before = httpx.get(f"{console}/v1/system/processes", headers=MANAGER, timeout=5).json()
        assert before["supervised"] and before["processes"]["scoring"]["restarts"] == 0
        os.kill(before["processes"]["scoring"]["pid"], signal.SIGKILL)
        scoring = f"http://127.0.0.1:{8002 + offset}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = httpx.get(f"{console}/v1/system/processes", headers=MANAGER, timeout=5).json()
            restarted = state["processes"]["scoring"]
            try:
                ready = httpx.get(f"{scoring}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and restarted["restarts"] == 1:
                break
            time.sleep(0.3)
        else:
            raise AssertionError(f"scoring not restarted: {state}")
        assert restarted["last_exit"]["code"] == -signal.SIGKILL
        assert restarted["pid"] != before["processes"]["scoring"]["pid"]
        assert [e["event"] for e in state["events"]] == ["exited", "restarted"]
        # Ctrl-C: the terminal sends SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=90)
        assert process.returncode == 0, rest
        assert "leadflow: stopped" in rest
        for service in SERVICES:
            try:
                httpx.get(f"http://127.0.0.1:{service.port + offset}/healthz", timeout=1)
                raise AssertionError(f"{service.name} still answers after Ctrl-C")
            except httpx.TransportError:
                pass
        # Intake stopped first (no new leads while the rest drains), the broker last.
        logs = tmp_path / "logs"
        intake_done = _shutdown_at(logs / "lead-intake.log")
        assert all(intake_done <= _shutdown_at(logs / f"{s.name}.log") for s in SERVICES), (
            "lead-intake did not stop first"
        )
        for service in SERVICES:
            assert not _errors_while_stopping(logs / f"{service.name}.log"), service.name
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class _StandIns(System):
    """A System whose "services" are small Python processes: ``behaviour[name]`` is the
    code each runs (sleep for ever, or exit at once with a code)."""

    behaviour: dict[str, str] = {}

    def _spawn(
        self, definition: ServiceDef, embedded: bool, port: int | None = None, log_name: str = ""
    ) -> RunningService:
        code = self.behaviour.get(definition.name, "import time; time.sleep(120)")
        process = subprocess.Popen([sys.executable, "-c", code])
        return RunningService(definition, port or 0, process)


def _stand_ins(tmp_path: Path, behaviour: dict[str, str]) -> _StandIns:
    system = _StandIns(data_dir=tmp_path)
    system.behaviour = behaviour
    for definition in SERVICES[:2]:
        system.services[definition.name] = system._spawn(definition, False)
    return system


def _poll_until(supervisor: Supervisor, done: object, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        supervisor.poll()
        if callable(done) and done():
            return
        time.sleep(0.02)
    raise AssertionError("supervisor did not get there in time")


def test_supervisor_restarts_with_growing_backoff_then_gives_up_on_a_crash_loop(
    tmp_path: Path,
) -> None:
    system = _stand_ins(tmp_path, {"scoring": "raise SystemExit(3)"})
    said: list[str] = []
    policy = RestartPolicy(max_restarts=3, window_s=60, backoff_initial_s=0.3, backoff_max_s=1.2)
    supervisor = Supervisor(system, policy, say=said.append)
    restart_times: list[float] = []
    try:
        with pytest.raises(CrashLoop) as crash:
            deadline = time.monotonic() + 30
            seen = 0
            while time.monotonic() < deadline:
                supervisor.poll()
                state = json.loads((tmp_path / "supervisor.json").read_text())
                if state["processes"]["scoring"]["restarts"] > seen:
                    seen = state["processes"]["scoring"]["restarts"]
                    restart_times.append(time.monotonic())
                time.sleep(0.01)
        message = str(crash.value)
        assert "scoring exited with 3 after 3 restarts" in message
        assert "crash loop" in message and "scoring.log" in message
        state = json.loads((tmp_path / "supervisor.json").read_text())
        assert state["processes"]["scoring"]["state"] == "failed"
        assert state["processes"]["scoring"]["restarts"] == 3
        assert state["processes"]["lead-intake"] == {
            **state["processes"]["lead-intake"],
            "state": "running",
            "restarts": 0,
        }
        assert [e["event"] for e in state["events"]][-1] == "gave_up"
        # Backoff doubles: the gaps between restarts grow (0.3 s, then 0.6 s after the exit).
        gaps = [b - a for a, b in itertools.pairwise(restart_times)]
        assert len(gaps) == 2 and gaps[1] > gaps[0], gaps
        assert len(said) == 3 and "restarting in" in said[0]
    finally:
        for svc in system.processes():
            svc.process.kill()
            svc.process.wait()


def test_supervisor_restarts_a_killed_process_and_keeps_the_others(tmp_path: Path) -> None:
    system = _stand_ins(tmp_path, {})
    supervisor = Supervisor(system, RestartPolicy(backoff_initial_s=0.05), say=lambda _: None)
    try:
        victim = system.services["scoring"].process
        other = system.services["lead-intake"].process
        victim.kill()
        _poll_until(supervisor, lambda: system.services["scoring"].process is not victim)
        assert system.services["scoring"].process.poll() is None
        assert system.services["lead-intake"].process is other and other.poll() is None
        state = json.loads((tmp_path / "supervisor.json").read_text())
        assert state["processes"]["scoring"]["restarts"] == 1
        assert state["processes"]["scoring"]["last_exit"]["code"] == -signal.SIGKILL
    finally:
        for svc in system.processes():
            svc.process.kill()
            svc.process.wait()
