"""``leadflow`` command: ``up`` runs everything; ``token`` mints a JWT."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType

from leadflow_launcher.demo import load_demo
from leadflow_launcher.supervisor import CrashLoop, RestartPolicy, Supervisor
from leadflow_launcher.system import ALL_TOPICS, SERVICES, System
from leadflow_shared.auth import ROLES, mint_token
from leadflow_shared.messaging import create_topics
from leadflow_shared.messaging.dlq import replay_dead_letters
from leadflow_shared.settings import DEV_JWT_SECRET


def _secret() -> str:
    return os.environ.get("LEADFLOW_JWT_SECRET", DEV_JWT_SECRET)


def cmd_token(args: argparse.Namespace) -> int:
    print(mint_token(_secret(), sub=args.sub, role=args.role, ttl=timedelta(hours=args.ttl_hours)))
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    created = asyncio.run(create_topics(bootstrap, ALL_TOPICS, args.partitions, args.replication))
    print(f"created: {', '.join(created) or 'nothing (all exist)'}")
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    report = asyncio.run(
        replay_dead_letters(bootstrap, f"{args.service}.dlq", only_original_topic=args.topic)
    )
    print(f"replayed {report.replayed} dead letter(s) of {args.service}; skipped {report.skipped}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    data_dir = Path(args.data_dir).resolve()
    system = System(
        data_dir=data_dir,
        env={"LEADFLOW_JWT_SECRET": _secret()},
        ports={s.name: s.port + args.port_offset for s in SERVICES},
        broker_port=9092 + args.port_offset,
    )
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    print(f"leadflow: starting (data in {data_dir}, logs in {data_dir / 'logs'})", flush=True)
    try:
        system.start()
        print(
            f"leadflow: broker {system.bootstrap_servers}"
            + (" (embedded Tansu, memory storage)" if system.broker else ""),
            flush=True,
        )
        for definition in SERVICES:
            print(f"  {definition.name:<12} {system.url(definition.name)}", flush=True)
        admin = mint_token(_secret(), sub="admin", role="admin", ttl=timedelta(days=1))
        if not args.no_demo:
            facts = load_demo({s.name: system.url(s.name) for s in SERVICES}, admin, data_dir)
            print(f"leadflow: demo organisation loaded — reps: {facts['reps']}", flush=True)
            print(
                f"leadflow: demo web form key {facts['form_key']} "
                "(allowed origin http://localhost:3000)",
                flush=True,
            )
        print(f"leadflow: admin token (24 h):\n{admin}", flush=True)
        print(f"leadflow: ready — dashboard {system.url('console')}/ ; Ctrl-C stops", flush=True)
        supervisor = Supervisor(
            system,
            RestartPolicy(max_restarts=args.max_restarts, window_s=args.restart_window_s),
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
        while not stopping:
            try:
                supervisor.poll()
            except CrashLoop as exc:
                print(f"leadflow: {exc}", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("leadflow: stopping (intake first, consumers drain, broker last)…", flush=True)
        system.stop()
        print("leadflow: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leadflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run the broker, every service and the demo organisation")
    up.add_argument("--data-dir", default=os.environ.get("LEADFLOW_DATA_DIR", "var"))
    up.add_argument("--no-demo", action="store_true", help="do not load the demo organisation")
    up.add_argument(
        "--port-offset",
        type=int,
        default=0,
        help="add this to every port (8001 → 8001+N, broker 9092+N), e.g. for a second copy",
    )
    up.add_argument(
        "--max-restarts",
        type=int,
        default=RestartPolicy.max_restarts,
        help="restarts of one process within --restart-window-s before giving up (crash loop)",
    )
    up.add_argument("--restart-window-s", type=float, default=RestartPolicy.window_s)
    up.set_defaults(func=cmd_up)
    token = sub.add_parser("token", help="mint a bearer token")
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--sub", required=True, help="rep id or client name")
    token.add_argument("--ttl-hours", type=float, default=12.0)
    token.set_defaults(func=cmd_token)
    topics = sub.add_parser("topics", help="create leadflow's topics on KAFKA_BOOTSTRAP_SERVERS")
    topics.add_argument("--partitions", type=int, default=6)
    topics.add_argument("--replication", type=int, default=1)
    topics.set_defaults(func=cmd_topics)
    dlq = sub.add_parser("dlq-replay", help="send a service's dead letters back to their topics")
    dlq.add_argument("service", choices=[s.name for s in SERVICES])
    dlq.add_argument("--topic", default=None, help="only dead letters from this original topic")
    dlq.set_defaults(func=cmd_dlq_replay)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
