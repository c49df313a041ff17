"""Start and stop the whole system: broker, topics, one uvicorn process per service.

Used by ``leadflow up`` and by the cross-service tests, so both run the same way.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from leadflow_shared.broker import EmbeddedBroker
from leadflow_shared.events import TOPICS
from leadflow_shared.ids import new_id
from leadflow_shared.ledger import consumer_groups, group_lag
from leadflow_shared.messaging import create_topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceDef:
    name: str
    package: str
    port: int

    @property
    def env_suffix(self) -> str:
        return self.name.upper().replace("-", "_")


SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("lead-intake", "leadflow_intake", 8001),
    ServiceDef("scoring", "leadflow_scoring", 8002),
    ServiceDef("routing", "leadflow_routing", 8003),
    ServiceDef("deals", "leadflow_deals", 8004),
    ServiceDef("webhooks", "leadflow_webhooks", 8005),
    ServiceDef("console", "leadflow_console", 8080),
)
DLQ_TOPICS = tuple(f"{s.name}.dlq" for s in SERVICES)
ALL_TOPICS = TOPICS + DLQ_TOPICS
# The local broker answers an empty fetch only when the wait expires, so the wait is the
# hop latency; but every empty fetch costs the broker CPU (docs/benchmarks.md). Services on
# the speed-to-lead path wait briefly; the others longer.
EMBEDDED_FETCH_MAX_WAIT_MS: dict[str, int] = {
    "lead-intake": 200,
    "scoring": 5,
    "routing": 5,
    "deals": 100,
    "webhooks": 100,
    "console": 200,
}
# After a few seconds without records every consumer switches to this longer wait, so the
# idle system costs little; the first lead after a quiet spell pays it once per hop.
EMBEDDED_FETCH_IDLE_WAIT_MS = 250
# The order of a graceful stop: first what takes leads in, then (after the consumers have
# drained) the rest, the broker last.
INTAKE = ("lead-intake",)
_PR_SET_PDEATHSIG = 1


def _child_setup() -> None:
    """In the child before exec: its own process group, so a Ctrl-C in the terminal reaches
    only the launcher (which stops the children in order); and on Linux SIGTERM when the
    launcher dies, so a killed launcher leaves no orphan holding the ports."""
    os.setpgid(0, 0)
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass


@dataclass
class RunningService:
    definition: ServiceDef
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class System:
    """The broker (embedded unless ``KAFKA_BOOTSTRAP_SERVERS`` is given) and the services."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {s.name: s.port for s in SERVICES})
    broker_port: int = 9092
    env: dict[str, str] = field(default_factory=dict)
    # Every partition adds to the local broker's cost of each fetch; 3 keep the parallelism
    # of a consumer group visible at a fraction of the idle CPU of 6.
    partitions: int = 3
    broker: EmbeddedBroker | None = None
    # A new value each time the embedded broker starts (it keeps topics in memory): the
    # services republish what the previous broker held (docs/RELIABILITY.md).
    broker_epoch: str = ""
    # How long a graceful stop waits for the consumers to drain once intake has stopped.
    drain_timeout_s: float = 15
    services: dict[str, RunningService] = field(default_factory=dict)
    # Further processes of a service in the same consumer group (``start_replica``).
    replicas: list[RunningService] = field(default_factory=list)

    @property
    def bootstrap_servers(self) -> str:
        given = self.env.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if given:
            return given
        assert self.broker is not None, "broker not started"
        return self.broker.bootstrap_servers

    def url(self, service: str) -> str:
        return self.services[service].url

    def start(self, *, ready_timeout_s: float = 90) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        embedded = not (
            self.env.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        )
        if embedded:
            self.start_broker()
        else:
            asyncio.run(create_topics(self.bootstrap_servers, ALL_TOPICS, self.partitions))
        for definition in SERVICES:
            self.services[definition.name] = self._spawn(definition, embedded)
        self.wait_ready(ready_timeout_s)

    @property
    def embedded(self) -> bool:
        return self.broker is not None

    def start_broker(self) -> None:
        """Start the embedded broker (a new epoch: it starts empty) and create the topics."""
        self.broker = EmbeddedBroker(
            self.broker_port, self.data_dir / "logs" / "broker.log", preexec_fn=_child_setup
        )
        self.broker.start()
        self.broker_epoch = new_id()
        asyncio.run(create_topics(self.bootstrap_servers, ALL_TOPICS, self.partitions))

    def respawn(self, service: RunningService) -> RunningService:
        """Start ``service``'s process again (same port, same log), after it exited."""
        name = service.definition.name
        replica = service in self.replicas
        log_name = "" if not replica else f"{name}-replica-{self.replicas.index(service) + 2}"
        fresh = self._spawn(service.definition, self.embedded, service.port, log_name)
        if replica:
            self.replicas[self.replicas.index(service)] = fresh
        else:
            self.services[name] = fresh
        return fresh

    def start_replica(
        self, service: str, port: int, *, ready_timeout_s: float = 60
    ) -> RunningService:
        """One more process of ``service`` in the same consumer group (and database)."""
        definition = next(s for s in SERVICES if s.name == service)
        embedded = self.embedded
        number = 2 + sum(1 for r in self.replicas if r.definition.name == service)
        replica = self._spawn(definition, embedded, port, f"{service}-replica-{number}")
        self.replicas.append(replica)
        self.wait_ready(ready_timeout_s, {f"{service}-replica-{number}": replica})
        return replica

    def stop_replica(self, replica: RunningService) -> None:
        """SIGTERM one replica started by ``start_replica`` and wait for it to leave."""
        if replica.process.poll() is None:
            replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            replica.process.kill()
            replica.process.wait()
        if replica in self.replicas:
            self.replicas.remove(replica)

    def _spawn(
        self, definition: ServiceDef, embedded: bool, port: int | None = None, log_name: str = ""
    ) -> RunningService:
        port = self.ports[definition.name] if port is None else port
        env = {
            **os.environ,
            "LEADFLOW_DATA_DIR": str(self.data_dir),
            **self.env,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
        }
        if embedded:
            env.setdefault(
                "KAFKA_FETCH_MAX_WAIT_MS", str(EMBEDDED_FETCH_MAX_WAIT_MS[definition.name])
            )
            env.setdefault("KAFKA_FETCH_IDLE_WAIT_MS", str(EMBEDDED_FETCH_IDLE_WAIT_MS))
            env["LEADFLOW_BROKER_EPOCH"] = self.broker_epoch
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = (log_dir / f"{log_name or definition.name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and packages
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                f"{definition.package}.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                # uvloop and httptools: the C event loop and HTTP parser (docs/benchmarks.md).
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--timeout-graceful-shutdown",
                "20",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_child_setup,  # setpgid and prctl only
        )
        return RunningService(definition, port, process)

    def wait_ready(
        self, timeout_s: float, services: dict[str, RunningService] | None = None
    ) -> None:
        deadline = time.monotonic() + timeout_s
        pending = dict(self.services if services is None else services)
        with httpx.Client(timeout=2) as client:
            while pending:
                for name, svc in list(pending.items()):
                    if svc.process.poll() is not None:
                        raise RuntimeError(
                            f"{name} exited with {svc.process.returncode}; see "
                            f"{self.data_dir / 'logs' / (name + '.log')}"
                        )
                    try:
                        if client.get(f"{svc.url}/readyz").status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(f"not ready after {timeout_s}s: {', '.join(pending)}")
                time.sleep(0.2)

    def processes(self) -> list[RunningService]:
        return [*self.services.values(), *self.replicas]

    def stop(self) -> None:
        """Stop in order: intake first (no new leads), then wait until every consumer group
        has caught up (at most ``drain_timeout_s``), then every other service (each
        finishes its batch, commits and flushes its outbox), the broker last."""
        running = self.processes()
        intake = [s for s in running if s.definition.name in INTAKE]
        _terminate(intake)
        if self.embedded and any(s.process.poll() is None for s in running):
            try:
                self.wait_drained(self.drain_timeout_s)
            except Exception as exc:  # a best effort: the outbox republishes what is lost
                log.warning("drain before stop failed: %s", type(exc).__name__)
        _terminate([s for s in running if s not in intake])
        self.services.clear()
        self.replicas.clear()
        if self.broker is not None:
            self.broker.stop()

    def kill(self) -> None:
        """SIGKILL every process, the broker included: a crash of the whole system."""
        for svc in self.processes():
            if svc.process.poll() is None:
                svc.process.kill()
            svc.process.wait()
        if self.broker is not None and self.broker.process is not None:
            self.broker.process.kill()
            self.broker.process.wait()
        self.services.clear()
        self.replicas.clear()

    def wait_drained(self, timeout_s: float) -> bool:
        """Wait until no consumer group has uncommitted records (twice in a row, so what
        one service published on the way is seen by the next); False after ``timeout_s``."""
        groups = self._consumer_groups()
        deadline = time.monotonic() + timeout_s
        calm = 0
        while time.monotonic() < deadline:
            lag = asyncio.run(group_lag(self.bootstrap_servers, groups, only_committed=True))
            calm = calm + 1 if all(v == 0 for v in lag.values()) else 0
            if calm >= 2:
                return True
            time.sleep(0.3)
        return False

    def _consumer_groups(self) -> dict[str, set[str]]:
        """Each running service's groups and the topics they consume, from its /metrics
        (the same source the bench uses); a service that does not answer is asked about
        every topic."""
        groups: dict[str, set[str]] = {}
        with httpx.Client(timeout=2) as client:
            for svc in self.services.values():
                if svc.process.poll() is not None or svc.definition.name in INTAKE:
                    continue
                try:
                    found = consumer_groups(client.get(f"{svc.url}/metrics").text)
                except httpx.HTTPError:
                    found = {svc.definition.name: set(ALL_TOPICS)}
                for group, topics in found.items():
                    groups.setdefault(group, set()).update(topics)
        return groups


def _terminate(processes: list[RunningService], timeout_s: float = 30) -> None:
    for svc in processes:
        if svc.process.poll() is None:
            svc.process.send_signal(signal.SIGTERM)
    for svc in processes:
        try:
            svc.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            svc.process.kill()
            svc.process.wait()
