"""The per-rep counters decisions read are kept in step with history, transaction by
transaction — several decisions per transaction, rollbacks, rules and directory changes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_routing.counters import day_scope, open_work
from leadflow_routing.models import Decision, RepCounter, RoutedLead
from leadflow_routing.rules.document import RuleSet
from leadflow_routing.rules.versions import publish_rules
from leadflow_routing.sla import SlaTimer
from leadflow_shared.events import (
    CloudEvent,
    DealCreated,
    DealLost,
    DealWon,
    EventData,
    LeadCaptured,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, mql_scored

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "maya")
BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


class Boom(Exception):
    pass


async def _rep(client: httpx.AsyncClient, rep_id: str, role: str, **fields: object) -> None:
    body = {"id": rep_id, "name": rep_id.title(), "email": f"{rep_id}@acme-demo.com"}
    r = await client.post("/v1/reps", json={**body, "role": role, **fields}, headers=MANAGER)
    assert r.status_code == 201, r.text


async def _rules(client: httpx.AsyncClient, *rules: dict[str, object]) -> None:
    r = await client.put("/v1/routing/rules", json={"rules": list(rules)}, headers=MANAGER)
    assert r.status_code == 200, r.text


def _mql_events(lead_id: str, country: str = "US") -> list[EventData]:
    return [
        LeadCaptured(
            lead_id=lead_id, email="x@y.io", country=country, company="Acme", captured_at=utcnow()
        ),
        mql_scored(lead_id),
    ]


async def _handle(session: AsyncSession, runtime: ServiceRuntime, events: list[EventData]) -> None:
    """The handlers one after another in one session, as the batch consumer calls them."""
    assert runtime.spec.handlers is not None
    for data in events:
        event = CloudEvent(
            id=new_id(),
            type=data.event_type,
            source="leadflow/test",
            subject=data.lead_id,
            data=data.model_dump(mode="json"),
        )
        await runtime.spec.handlers.handle_one(session, event, data)


async def _in_one_transaction(
    runtime: ServiceRuntime, events: list[EventData], *, then_fail: bool = False
) -> None:
    """A batch in one transaction, which rolls back as a whole when anything raises."""
    async with runtime.db.transaction() as session:
        await _handle(session, runtime, events)
        if then_fail:
            raise Boom


async def _counters(runtime: ServiceRuntime) -> dict[tuple[str, str, str], int]:
    """Every counter but weighted rotation's credits (which history does not determine:
    they depend on who was available), checked here to sum to zero in each pool."""
    async with runtime.db.transaction() as session:
        rows = list(await session.scalars(select(RepCounter)))
    credits: Counter[str] = Counter()
    for r in rows:
        if r.kind == "credit":
            credits[r.scope] += r.value
    assert all(total == 0 for total in credits.values()), credits
    return {(r.kind, r.scope, r.rep_id): r.value for r in rows if r.value and r.kind != "credit"}


async def _counters_from_history(runtime: ServiceRuntime) -> dict[tuple[str, str, str], int]:
    """What the counters must say, recomputed the slow way from decisions and leads."""
    expected: Counter[tuple[str, str, str]] = Counter()
    async with runtime.db.transaction() as session:
        for d in await session.scalars(
            select(Decision).where(Decision.kind.in_(("assigned", "reassigned")))
        ):
            assert d.owner is not None
            expected["rotation", f"{d.role}:{d.rule}", d.owner] += 1
            expected["assigned_on", day_scope(d.at), d.owner] += 1
        for lead in await session.scalars(select(RoutedLead)):
            for role, rep in open_work(lead):
                expected["open", role, rep] += 1
    return dict(expected)


async def _owners_in(session: AsyncSession) -> list[str | None]:
    return list(await session.scalars(select(RoutedLead.sdr).order_by(RoutedLead.updated_at)))


async def _owners(runtime: ServiceRuntime) -> list[str | None]:
    async with runtime.db.transaction() as session:
        return await _owners_in(session)


@BOTH
async def test_counters_agree_with_history_after_many_decisions_and_transitions(
    any_service: Service,
) -> None:
    client, runtime = any_service
    for rep_id, territory in (("ana", "NA"), ("ben", "NA"), ("cleo", "EU"), ("dan", "EU")):
        await _rep(client, rep_id, "sdr", territories=[territory], capacity_per_day=40)
    for rep_id in ("nora", "nick"):
        await _rep(client, rep_id, "ae")
    await _rep(client, "alex", "am")
    await _rules(
        client,
        {
            "id": "na",
            "role": "sdr",
            "conditions": [{"field": "country", "op": "eq", "value": "US"}],
            "pool": {"territory": "NA"},
        },
        {"id": "eu", "role": "sdr", "pool": {"territory": "EU"}, "strategy": "load_balanced"},
        {"id": "aes", "role": "ae", "strategy": "weighted"},
    )
    leads = [new_id() for _ in range(30)]
    for start in range(0, len(leads), 6):  # several decisions per transaction
        events: list[EventData] = []
        for i, lead_id in enumerate(leads[start : start + 6]):
            events += _mql_events(lead_id, "US" if i % 2 else "DE")
        await _in_one_transaction(runtime, events)
    assert await _counters(runtime) == await _counters_from_history(runtime)

    async def sdr_of(lead_id: str) -> str:
        r = await client.get(f"/v1/assignments/{lead_id}", headers=MANAGER)
        owner: str = r.json()["owners"]["sdr"]
        return owner

    for lead_id in leads[:10]:
        r = await client.post(
            f"/v1/leads/{lead_id}/accept", headers=auth_header("sdr", await sdr_of(lead_id))
        )
        assert r.status_code == 200, r.text
    for lead_id in leads[10:13]:
        r = await client.post(
            f"/v1/leads/{lead_id}/disqualify", json={"reason": "student"}, headers=MANAGER
        )
        assert r.status_code == 200, r.text
    r = await client.post(f"/v1/leads/{leads[13]}/recycle", json={"reason": "Q3"}, headers=MANAGER)
    assert r.status_code == 200, r.text
    bant = {"budget": "50k", "authority": "CTO", "need": "routing", "timeline": "Q1"}
    for lead_id in leads[:5]:
        r = await client.post(f"/v1/leads/{lead_id}/qualify", json=bant, headers=MANAGER)
        assert r.status_code == 200 and r.json()["owners"]["ae"] in ("nora", "nick"), r.text
    deal_events: list[EventData] = []
    for lead_id, outcome in zip(leads[:3], ("won", "won", "lost"), strict=True):
        deal_id = new_id()
        deal_events.append(
            DealCreated(
                lead_id=lead_id,
                deal_id=deal_id,
                owner="nora",
                stage="discovery",
                probability=10,
                currency="USD",
                created_at=utcnow(),
            )
        )
        if outcome == "won":
            deal_events.append(
                DealWon(
                    lead_id=lead_id,
                    deal_id=deal_id,
                    owner="nora",
                    amount="1000",
                    currency="USD",
                    closed_at=utcnow(),
                )
            )
        else:
            deal_events.append(
                DealLost(
                    lead_id=lead_id,
                    deal_id=deal_id,
                    owner="nora",
                    currency="USD",
                    reason="price",
                    closed_at=utcnow(),
                )
            )
    await _in_one_transaction(runtime, deal_events)
    async with runtime.db.transaction() as session:  # three SDRs miss their SLA
        await session.execute(
            update(RoutedLead)
            .where(RoutedLead.id.in_(leads[20:23]))
            .values(sla_due_at=utcnow() - timedelta(seconds=1))
        )
    assert await SlaTimer(runtime.db, 1).tick() == 3

    counters = await _counters(runtime)
    assert counters == await _counters_from_history(runtime)
    assert counters[("open", "am", "alex")] == 2
    assert sum(v for (kind, _, _), v in counters.items() if kind == "assigned_on") == 30 + 5 + 2 + 3


@BOTH
async def test_decisions_in_one_transaction_see_each_others_counters(
    any_service: Service,
) -> None:
    client, runtime = any_service
    await _rep(client, "ana", "sdr")
    await _rep(client, "ben", "sdr")
    await _rep(client, "cleo", "sdr", capacity_per_day=1)
    leads = [new_id() for _ in range(7)]
    await _in_one_transaction(runtime, [e for lead_id in leads for e in _mql_events(lead_id)])
    per_rep = Counter(await _owners(runtime))
    # Cleo's one lead for the day was seen by the decisions after it, in the same transaction.
    assert per_rep == {"ana": 3, "ben": 3, "cleo": 1}
    assert await _counters(runtime) == await _counters_from_history(runtime)


@BOTH
async def test_a_rolled_back_decision_leaves_counters_untouched(any_service: Service) -> None:
    client, runtime = any_service
    await _rep(client, "ana", "sdr")
    await _rep(client, "ben", "sdr")
    await _in_one_transaction(runtime, _mql_events(new_id()))
    before = await _counters(runtime)

    lead_id = new_id()
    with pytest.raises(Boom):
        await _in_one_transaction(runtime, _mql_events(lead_id), then_fail=True)
    assert await _counters(runtime) == before
    # Run again, as the consumer does after a rollback: counted once.
    await _in_one_transaction(runtime, _mql_events(lead_id))
    assert await _counters(runtime) == await _counters_from_history(runtime)
    assert Counter(await _owners(runtime)) == {"ana": 1, "ben": 1}


@BOTH
async def test_cached_rules_and_directory_follow_changes_and_never_a_rolled_back_one(
    any_service: Service,
) -> None:
    client, runtime = any_service
    await _rep(client, "ana", "sdr")
    await _rep(client, "ben", "sdr")
    await _rules(client, {"id": "ana-only", "role": "sdr", "pool": {"reps": ["ana"]}})
    await _in_one_transaction(runtime, _mql_events(new_id()))

    # A rules change that rolls back, in a transaction that also decided with it (and so
    # filled the cache under its new version).
    with pytest.raises(Boom):
        async with runtime.db.transaction() as session:
            await publish_rules(
                session,
                RuleSet.model_validate(
                    {"rules": [{"id": "ben-only", "role": "sdr", "pool": {"reps": ["ben"]}}]}
                ),
                "maya",
            )
            await _handle(session, runtime, _mql_events(new_id()))
            assert await _owners_in(session) == ["ana", "ben"]
            raise Boom
    await _in_one_transaction(runtime, _mql_events(new_id()))
    assert await _owners(runtime) == ["ana", "ana"]

    # Committed changes apply to the next decision, on every path that changes them; the
    # version the rolled-back change wrote is never used again, so its cached copy is not.
    await _rules(client, {"id": "both", "role": "sdr", "pool": {"reps": ["ana", "ben"]}})
    await _in_one_transaction(runtime, _mql_events(new_id()) + _mql_events(new_id()))
    r = await client.patch("/v1/reps/ana", json={"active": False}, headers=MANAGER)
    assert r.status_code == 200
    await _in_one_transaction(runtime, _mql_events(new_id()))
    assert await _owners(runtime) == ["ana", "ana", "ana", "ben", "ben"]


@BOTH
async def test_concurrent_batches_keep_rotation_fair_and_counters_exact(
    any_service: Service,
) -> None:
    """Two consumers (replicas) deciding at once, each a batch per transaction: the decision
    lock serialises them, so round-robin stays within one and no count is lost."""
    client, runtime = any_service
    for rep_id in ("ana", "ben", "cleo"):
        await _rep(client, rep_id, "sdr")

    async def replica() -> None:
        for _ in range(5):
            leads = [new_id() for _ in range(4)]
            await _in_one_transaction(runtime, [e for x in leads for e in _mql_events(x)])

    await asyncio.gather(replica(), replica())
    per_rep = Counter(await _owners(runtime))
    assert sum(per_rep.values()) == 40
    assert max(per_rep.values()) - min(per_rep.values()) <= 1, per_rep
    assert await _counters(runtime) == await _counters_from_history(runtime)


@BOTH
async def test_concurrent_batches_keep_weighted_rotation_smooth(any_service: Service) -> None:
    """Weighted rotation's state lives in the database too: two replicas deciding at once
    give 3:1 weights exactly 3:1, and no interleaving of batches breaks the share."""
    client, runtime = any_service
    await _rep(client, "ana", "sdr", weight=3)
    await _rep(client, "ben", "sdr", weight=1)
    await _rules(client, {"id": "w", "role": "sdr", "strategy": "weighted"})

    async def replica() -> None:
        for _ in range(5):
            leads = [new_id() for _ in range(4)]
            await _in_one_transaction(runtime, [e for x in leads for e in _mql_events(x)])

    await asyncio.gather(replica(), replica())
    owners = await _owners(runtime)
    assert Counter(owners) == {"ana": 30, "ben": 10}
    async with runtime.db.transaction() as session:
        decisions = list(
            await session.scalars(
                select(Decision)
                .where(Decision.kind == "assigned")
                .order_by(Decision.at, Decision.id)
            )
        )
    running: Counter[str | None] = Counter()
    for k, d in enumerate(decisions, start=1):  # in decision order (the lock's order)
        running[d.owner] += 1
        assert abs(running["ana"] - k * 3 / 4) < 1, (k, running)
    assert await _counters(runtime) == await _counters_from_history(runtime)
