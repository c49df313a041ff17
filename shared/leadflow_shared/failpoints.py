"""Failpoints: make a process die at a named point, for the fault tests.

``LEADFLOW_FAILPOINTS="lead-intake:outbox.after_commit@3"`` makes lead-intake exit at once
(``os._exit``, like a ``kill -9``: no cleanup, no flush) the third time it passes
``outbox.after_commit``. Several are separated by commas. Each fires once per data
directory (a marker file under ``<data dir>/failpoints/``), so the process its supervisor
starts again runs normally. Unset — always, outside tests — :func:`hit` is one truth test.

Points: ``outbox.after_commit`` (the transaction is committed, its events not yet handed to
the relay: the response is never sent), ``outbox.after_send`` (the broker acknowledged a
batch, the rows are not yet marked sent: they will be published again).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

EXIT_CODE = 86
_armed: dict[str, int] = {}
_markers: Path | None = None
_service = "service"


def configure(service: str, data_dir: Path, spec: str | None = None) -> None:
    """Arm the failpoints ``spec`` (default: ``LEADFLOW_FAILPOINTS``) names for ``service``."""
    global _markers, _service
    _armed.clear()
    _service = service
    spec = os.environ.get("LEADFLOW_FAILPOINTS", "") if spec is None else spec
    _markers = data_dir / "failpoints"
    for item in filter(None, (part.strip() for part in spec.split(","))):
        owner, _, point = item.partition(":")
        name, _, count = point.partition("@")
        if owner != service or not name:
            continue
        if (_markers / f"{service}.{name}").exists():
            continue  # fired already, in an earlier process
        _armed[name] = max(1, int(count or 1))
        log.warning("failpoint armed", extra={"fields": {"failpoint": name, "at": _armed[name]}})


def hit(name: str) -> None:
    """Pass failpoint ``name``: exits the process if it is armed and its count is reached."""
    if not _armed or name not in _armed:
        return
    _armed[name] -= 1
    if _armed[name] > 0:
        return
    if _markers is not None:
        _markers.mkdir(parents=True, exist_ok=True)
        (_markers / f"{_service}.{name}").touch()
    log.warning("failpoint fired: exiting", extra={"fields": {"failpoint": name}})
    os._exit(EXIT_CODE)
