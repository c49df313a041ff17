"""The README's walk-through (docs/walkthrough.sh), run as a user would, against the system."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from leadflow_launcher.system import System

ROOT = Path(__file__).resolve().parent.parent


def test_readme_walkthrough_takes_a_form_post_to_closed_won(
    system: System, urls: dict[str, str]
) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "INTAKE": urls["lead-intake"],
        "SCORING": urls["scoring"],
        "ROUTING": urls["routing"],
        "DEALS": urls["deals"],
        "WEBHOOKS": urls["webhooks"],
        "CONSOLE": urls["console"],
        "DATA_DIR": str(system.data_dir),
        "LEADFLOW": str(bin_dir / "leadflow"),
        "PY": sys.executable,
        "EMAIL": "walkthrough@bigcorp.com",
    }
    result = subprocess.run(
        ["bash", str(ROOT / "docs" / "walkthrough.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "went from a form post to Closed Won with an account manager" in result.stdout
    assert '"am": "am-alex"' in result.stdout or "'am': 'am-alex'" in result.stdout
