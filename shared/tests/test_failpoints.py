"""Failpoints make a process exit at the Nth pass of a named point, once per data dir."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from leadflow_shared import failpoints

SCRIPT = """
import sys
from pathlib import Path
from leadflow_shared import failpoints
failpoints.configure("svc", Path(sys.argv[1]), "svc:outbox.after_commit@3,other:x@1")
for i in range(5):
    failpoints.hit("outbox.after_send")  # not armed: never exits
    failpoints.hit("outbox.after_commit")
    print(i, flush=True)
"""


def _run(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(data_dir)], capture_output=True, text=True, check=False
    )


def test_exits_at_the_nth_pass_then_never_again_for_that_data_dir(tmp_path: Path) -> None:
    first = _run(tmp_path)
    assert first.returncode == failpoints.EXIT_CODE
    assert first.stdout.split() == ["0", "1"]
    assert (tmp_path / "failpoints" / "svc.outbox.after_commit").exists()
    again = _run(tmp_path)  # the supervisor's restart: runs normally
    assert again.returncode == 0 and again.stdout.split() == ["0", "1", "2", "3", "4"]


def test_unarmed_points_and_other_services_do_nothing(tmp_path: Path) -> None:
    failpoints.configure("svc", tmp_path, "")
    failpoints.hit("outbox.after_commit")
    failpoints.configure("svc", tmp_path, "another:outbox.after_commit@1")
    failpoints.hit("outbox.after_commit")
    assert not (tmp_path / "failpoints").exists()
