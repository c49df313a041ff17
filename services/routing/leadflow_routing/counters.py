"""The per-rep counters decisions read (see :class:`~leadflow_routing.models.RepCounter`),
changed in the transaction of every assignment and of every change of a lead's open work,
so that a decision never scans history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from leadflow_routing.decisions import RoutingDecision
from leadflow_routing.models import RoutedLead
from leadflow_routing.repository import OPEN_STATUSES, CounterChange, RoutingRepository


def day_scope(now: datetime) -> str:
    """The UTC day that daily capacity counts in."""
    return now.astimezone(UTC).date().isoformat()


def open_work(lead: RoutedLead) -> frozenset[tuple[str, str]]:
    """(role, rep) pairs for which ``lead`` counts as open work now."""
    work: set[tuple[str, str]] = set()
    if lead.sdr and lead.status in OPEN_STATUSES["sdr"]:
        work.add(("sdr", lead.sdr))
    if lead.ae and lead.status in OPEN_STATUSES["ae"]:
        work.add(("ae", lead.ae))
    if lead.am:  # an account manager keeps every account
        work.add(("am", lead.am))
    return frozenset(work)


def open_work_changes(
    before: frozenset[tuple[str, str]], after: frozenset[tuple[str, str]]
) -> list[CounterChange]:
    return [CounterChange("open", role, rep, -1) for role, rep in sorted(before - after)] + [
        CounterChange("open", role, rep, 1) for role, rep in sorted(after - before)
    ]


def assignment_changes(decision: RoutingDecision, now: datetime) -> list[CounterChange]:
    """One more lead for the decision's owner from its pool and on this day (and, for
    weighted rotation, the credit of each rep it considered)."""
    return [
        CounterChange("rotation", decision.pool, decision.owner, 1, now),
        CounterChange("assigned_on", day_scope(now), decision.owner, 1, now),
    ] + [
        CounterChange("credit", decision.pool, rep_id, delta)
        for rep_id, delta in sorted(decision.credit_changes.items())
    ]


@asynccontextmanager
async def open_work_counted(repo: RoutingRepository, lead: RoutedLead) -> AsyncIterator[None]:
    """Wrap a change of the lead's status or owners: its open-work counters follow."""
    before = open_work(lead)
    yield
    await repo.add_to_counters(open_work_changes(before, open_work(lead)))
