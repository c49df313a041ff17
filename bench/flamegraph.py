"""Flame graphs of a service under load, with py-spy (``py-spy record --pid``).

(Named ``flamegraph.py``, not ``profile.py``: a ``profile`` module beside the scripts would
shadow the standard library's, which cProfile imports.)

Standalone: start the system, post MQL leads open-loop, record chosen services:

    .venv/bin/python bench/flamegraph.py --service routing --service scoring \
        [--rate 50] [--seconds 20] [--database sqlite|postgres]

Writes ``bench/results/flame-<UTC>-<database>-<service>-<rate>ps.svg``. Inside the suite:
``bench/run.py --profile routing,scoring`` records during the 50 leads/s phase.
py-spy needs ptrace rights over the process (root, or CAP_SYS_PTRACE in a container);
``--nonblocking`` samples without pausing the service, so the figures stay honest.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def py_spy_binary() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


async def py_spy_record(
    pid: int,
    seconds: float,
    out: Path,
    rate_hz: int = 100,
    idle: bool = False,
    fmt: str = "flamegraph",
) -> dict[str, Any]:
    """Record ``pid`` for ``seconds`` into the flame graph ``out`` (svg; ``fmt="raw"``:
    collapsed stacks, one ``frame;frame;… count`` line per stack, for scripts)."""
    binary = py_spy_binary()
    if binary is None:
        return {"error": "py-spy is not installed (make install adds it)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    args = [
        binary,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(rate_hz),
        "--format",
        fmt,
        "--output",
        str(out),
        "--nonblocking",
    ]
    if idle:
        args.append("--idle")
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return {"error": "py-spy did not finish in time", "svg": None}
    if proc.returncode != 0 or not out.exists():  # noqa: ASYNC240 - one stat
        return {"error": f"py-spy exit {proc.returncode}: {stdout.decode()[-400:]}", "svg": None}
    return {"svg": str(out), "pid": pid, "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--service", action="append", required=True)
    parser.add_argument("--rate", type=float, default=50.0, help="MQL leads/s offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--raw", action="store_true", help="collapsed stacks (.txt) instead of an svg"
    )
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    import run as suite

    plan = suite.Plan(
        **{
            **suite.QUICK.__dict__,
            "budget_s": args.seconds + 120,
            "s2l_rates": (args.rate,),
            "s2l_s": args.seconds,
            "drain_s": 30,
        }
    )
    services = tuple(args.service)
    ext = "txt" if args.raw else "svg"

    async def go() -> dict[str, Any]:
        # The suite's speed-to-lead phase records flame graphs at 50/s; here at any rate.
        original = suite.phase_speed_to_lead

        async def profiled(b: suite.Bench) -> dict[str, Any]:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            tasks = [
                asyncio.create_task(
                    py_spy_record(
                        b.system.services[s].process.pid,
                        args.seconds,
                        RESULTS / f"flame-{stamp}-{b.database}-{s}-{args.rate:g}ps.{ext}",
                        fmt="raw" if args.raw else "flamegraph",
                    )
                )
                for s in services
            ]
            b.profile = ()
            out = await original(b)
            out["flame_graphs"] = [await t for t in tasks]
            return out

        suite.PHASE_FUNCS["speed_to_lead"] = profiled
        return await suite.run_database(args.database, plan, ("speed_to_lead",), (), "flame")

    result = asyncio.run(go())
    phase = result["phases"].get("speed_to_lead", {})
    for graph in phase.get("flame_graphs", []):
        print(graph)
    for rate, figures in phase.items():
        if isinstance(figures, dict) and "speed_to_lead_ms" in figures:
            print(f"{rate}/s speed-to-lead ms: {figures['speed_to_lead_ms']}")
    if result["errors"]:
        print(result["errors"])
    return 0 if phase.get("flame_graphs") else 1


if __name__ == "__main__":
    raise SystemExit(main())
