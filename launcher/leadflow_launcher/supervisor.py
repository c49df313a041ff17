"""``leadflow up`` as a process manager: a child that dies is restarted with backoff.

A service process that exits while the system is running is started again after a backoff
(1 s, doubling up to 30 s; reset once it has run for a minute). More than
``max_restarts`` restarts of one process within ``window_s`` is a crash loop: the
supervisor gives up with a message naming the process, its exit code and its log, and
``leadflow up`` stops everything. If the embedded broker dies, it is started again (a new
epoch: it starts empty) and every service is restarted so that each republishes from its
outbox what the lost broker held.

Every restart is logged and kept in ``<data dir>/supervisor.json``, which the console shows
(``GET /v1/system/processes``). In production the orchestrator does this instead.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadflow_launcher.system import RunningService, System
from leadflow_shared.ids import utcnow

STATE_FILE = "supervisor.json"


@dataclass(frozen=True)
class RestartPolicy:
    max_restarts: int = 5
    window_s: float = 300
    backoff_initial_s: float = 1
    backoff_max_s: float = 30
    # A process that ran this long is healthy again: its next crash starts the backoff anew.
    stable_after_s: float = 60


class CrashLoop(RuntimeError):
    """A process kept dying; the supervisor gave up."""


@dataclass
class _Track:
    name: str
    restarts: deque[float] = field(default_factory=deque)  # monotonic times, in the window
    total_restarts: int = 0
    backoff_s: float = 0.0
    started_at: float = field(default_factory=time.monotonic)
    restart_at: float | None = None
    last_exit: dict[str, Any] | None = None
    state: str = "running"


class Supervisor:
    """Call :meth:`poll` every fraction of a second from the launcher's main loop."""

    def __init__(
        self,
        system: System,
        policy: RestartPolicy | None = None,
        *,
        say: Callable[[str], None] = print,
    ) -> None:
        self.system = system
        self.policy = policy or RestartPolicy()
        self.say = say
        self.state_path = system.data_dir / STATE_FILE
        self._tracks: dict[str, _Track] = {}
        self._events: deque[dict[str, Any]] = deque(maxlen=100)
        self._write()

    def _track(self, name: str) -> _Track:
        if name not in self._tracks:
            self._tracks[name] = _Track(name, backoff_s=self.policy.backoff_initial_s)
        return self._tracks[name]

    def _named(self) -> dict[str, RunningService]:
        out = dict(self.system.services)
        for i, replica in enumerate(self.system.replicas):
            out[f"{replica.definition.name}-replica-{i + 2}"] = replica
        return out

    def poll(self) -> None:
        """Notice exits, start what is due; raises :class:`CrashLoop` when giving up."""
        now = time.monotonic()
        changed = False
        broker = self.system.broker
        if broker is not None and broker.process is not None and broker.process.poll() is not None:
            self._exited("broker", broker.process.returncode, now)
            self._restart_broker()
            changed = True
        for name, svc in self._named().items():
            track = self._track(name)
            code = svc.process.poll()
            if code is not None and track.restart_at is None:
                self._exited(name, code, now)
                track.restart_at = now + track.backoff_s
                track.state = "restarting"
                self.say(
                    f"leadflow: {name} exited with {code}; restarting in {track.backoff_s:.0f} s "
                    f"(restart {len(track.restarts) + 1} of at most "
                    f"{self.policy.max_restarts} in {self.policy.window_s:.0f} s)"
                )
                changed = True
            elif code is None and track.state == "running":
                if now - track.started_at >= self.policy.stable_after_s:
                    track.backoff_s = self.policy.backoff_initial_s
            if track.restart_at is not None and now >= track.restart_at:
                self.system.respawn(svc)
                track.restart_at = None
                track.started_at = now
                track.state = "running"
                track.restarts.append(now)
                track.total_restarts += 1
                track.backoff_s = min(track.backoff_s * 2, self.policy.backoff_max_s)
                self._event(name, "restarted", restarts=track.total_restarts)
                changed = True
        if changed:
            self._write()

    def _exited(self, name: str, code: int, now: float) -> None:
        track = self._track(name)
        while track.restarts and now - track.restarts[0] > self.policy.window_s:
            track.restarts.popleft()
        track.last_exit = {"code": code, "at": utcnow().isoformat()}
        self._event(name, "exited", code=code)
        if len(track.restarts) >= self.policy.max_restarts:
            track.state = "failed"
            self._event(name, "gave_up", code=code)
            self._write()
            log = self.system.data_dir / "logs" / f"{name}.log"
            raise CrashLoop(
                f"{name} exited with {code} after {len(track.restarts)} restarts within "
                f"{self.policy.window_s:.0f} s: a crash loop, giving up (see {log}). "
                "Fix the cause and run `make run` again."
            )

    def _restart_broker(self) -> None:
        track = self._track("broker")
        track.restarts.append(time.monotonic())
        track.total_restarts += 1
        self.say("leadflow: the broker exited; starting a new one and restarting every service")
        for svc in self.system.processes():
            if svc.process.poll() is None:
                svc.process.terminate()
        for svc in self.system.processes():
            svc.process.wait()
        self.system.start_broker()
        for svc in list(self.system.processes()):
            self.system.respawn(svc)
            self._track(self._name_of(svc)).started_at = time.monotonic()
        self._event("broker", "restarted", restarts=track.total_restarts)

    def _name_of(self, svc: RunningService) -> str:
        return next(name for name, s in self._named().items() if s is svc)

    def _event(self, process: str, what: str, **details: Any) -> None:
        at = utcnow().isoformat()
        self._events.append({"at": at, "process": process, "event": what, **details})

    def snapshot(self) -> dict[str, Any]:
        processes: dict[str, Any] = {}
        named = self._named()
        for name, svc in named.items():
            track = self._track(name)
            processes[name] = {
                "pid": svc.process.pid,
                "state": track.state,
                "restarts": track.total_restarts,
                "last_exit": track.last_exit,
            }
        if self.system.broker is not None:
            track = self._track("broker")
            process = self.system.broker.process
            processes["broker"] = {
                "pid": process.pid if process is not None else None,
                "state": track.state,
                "restarts": track.total_restarts,
                "last_exit": track.last_exit,
            }
        return {
            "supervisor_pid": os.getpid(),
            "updated_at": utcnow().isoformat(),
            "policy": {
                "max_restarts": self.policy.max_restarts,
                "window_s": self.policy.window_s,
                "backoff_initial_s": self.policy.backoff_initial_s,
                "backoff_max_s": self.policy.backoff_max_s,
            },
            "processes": processes,
            "events": list(self._events),
        }

    def _write(self) -> None:
        path: Path = self.state_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot(), indent=2))
        tmp.replace(path)
