"""A run of lead.captured events is handled set-based (one locking read, one insert, one
update) and leaves exactly what one event at a time leaves: new leads, updated profiles,
erased leads untouched, an MQL whose score came first routed, a lead seen twice in the run
ending with its last profile — on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from leadflow_routing.models import RoutedLead
from leadflow_shared.events import LeadCaptured, LeadErased, LeadScored
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import (
    auth_header,
    deliver,
    deliver_batch,
    mql_scored,
    outbox_events,
)

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")


def _captured(lead_id: str, country: str, company: str, **extra: Any) -> LeadCaptured:
    return LeadCaptured(
        lead_id=lead_id,
        email=f"{lead_id}@example.com",
        country=country,
        company=company,
        employees=500,
        captured_at=utcnow(),
        **extra,
    )


def _scored(lead_id: str) -> LeadScored:
    return mql_scored(lead_id, score=80, engagement=20, grade="A", fit_grade="A")


async def _leads(runtime: ServiceRuntime) -> dict[str, Any]:
    """Each lead's row, as plain values."""
    table = RoutedLead.__table__
    async with runtime.db.read() as session:
        rows = (await session.execute(select(table))).mappings().all()
    return {row["id"]: _Row(row) for row in rows}


class _Row:
    def __init__(self, values: Any) -> None:
        self.__dict__.update(dict(values))


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_a_captured_run_matches_one_event_at_a_time(any_service: Service) -> None:
    client, runtime = any_service
    r = await client.post(
        "/v1/reps",
        json={"id": "ana", "name": "Ana", "email": "ana@x.io", "role": "sdr"},
        headers=MANAGER,
    )
    assert r.status_code == 201, r.text
    known, erased, scored_first, twice = (new_id() for _ in range(4))
    fresh = [new_id() for _ in range(5)]
    await deliver(runtime, _captured(known, "US", "Old Co"))
    await deliver(runtime, _scored(known))  # routed once, with the old profile
    await deliver(runtime, _captured(erased, "US", "Gone"))
    await deliver(runtime, LeadErased(lead_id=erased, erased_at=utcnow()))
    await deliver(runtime, _scored(scored_first))  # the score before the profile: waits
    assert (await _leads(runtime))[scored_first].sdr is None

    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]).split()[0].upper())

    engine = runtime.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        handled = await deliver_batch(
            runtime,
            [
                *(_captured(lead_id, "DE", f"Fresh {i}") for i, lead_id in enumerate(fresh)),
                _captured(known, "CA", "New Co"),
                _captured(erased, "US", "Back Again"),
                _captured(scored_first, "US", "Hand Raiser"),
                _captured(twice, "US", "First"),
                _captured(twice, "GB", "Second"),
            ],
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(handled)

    leads = await _leads(runtime)
    for i, lead_id in enumerate(fresh):
        lead = leads[lead_id]
        assert lead.profile_known and lead.company == f"Fresh {i}"
        assert lead.profile["country"] == "DE" and lead.profile["employees"] == 500
        assert lead.status == "new" and not lead.mql and lead.captured_at is not None
    # A known lead's profile is replaced; its fit grade (from lead.scored) is kept.
    assert leads[known].company == "New Co"
    assert leads[known].profile["country"] == "CA" and leads[known].profile["fit_grade"] == "A"
    assert leads[known].sdr == "ana"
    # Erasure sticks: a late capture does not bring the profile back.
    assert leads[erased].erased and leads[erased].profile == {} and leads[erased].company is None
    # The MQL that waited for its profile is routed now.
    assert leads[scored_first].sdr == "ana" and leads[scored_first].status == "assigned"
    assert leads[twice].company == "Second" and leads[twice].profile["country"] == "GB"
    assigned = [e["lead_id"] for e in await outbox_events(runtime, "lead.assigned")]
    assert sorted(assigned) == sorted([known, scored_first])
    # Set-based: the eight leads of the run that need no decision cost a fixed handful of
    # statements (read, insert, update), not one or two each.
    assert statements.count("INSERT") <= 6  # ids, new leads, the two routed via the ORM
    assert len(statements) <= 16  # 14 here; one event at a time makes 10 INSERTs alone
