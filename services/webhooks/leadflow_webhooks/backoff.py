"""When to try a failed delivery again."""

from __future__ import annotations

from collections.abc import Sequence


def retry_delay(failed_attempts: int, schedule: Sequence[float]) -> float | None:
    """Seconds to wait after the ``failed_attempts``-th failed attempt of a run, or None
    when the schedule is exhausted (the delivery has failed for good)."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return float(schedule[failed_attempts - 1])
