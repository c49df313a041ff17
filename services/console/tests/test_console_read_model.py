"""The read model fed by events (via the consumer's idempotent path) and read over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from leadflow_console.handlers import record_assignment
from leadflow_console.models import LeadJourney
from leadflow_shared.events import (
    AccountAssigned,
    CloudEvent,
    DealCreated,
    DealLost,
    DealStageChanged,
    DealWon,
    LeadAccepted,
    LeadAssigned,
    LeadCaptured,
    LeadDisqualified,
    LeadErased,
    LeadQualified,
    LeadReassigned,
    LeadRecycled,
    LeadScored,
    LeadSlaBreached,
)
from leadflow_shared.ids import utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, deliver_batch, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "mia")


def captured(
    lead_id: str, at: datetime, source: str | None = "web", campaign: str | None = None
) -> LeadCaptured:
    return LeadCaptured(
        lead_id=lead_id,
        email=f"{lead_id}@example.com",
        first_name="Ann",
        company="Acme",
        source=source,
        campaign=campaign,
        captured_at=at,
    )


def scored(lead_id: str, mql: bool, at: datetime) -> LeadScored:
    return LeadScored(
        lead_id=lead_id,
        score=80 if mql else 20,
        fit=40,
        engagement=40,
        grade="A" if mql else "C",
        mql=mql,
        rules_version=1,
        scored_at=at,
    )


def assigned(lead_id: str, owner: str, role: str = "sdr") -> LeadAssigned:
    return LeadAssigned(
        lead_id=lead_id, role=role, owner=owner, rule="default", strategy="round_robin", reason="r"
    )


def deal_created(lead_id: str, deal_id: str, owner: str, at: datetime) -> DealCreated:
    return DealCreated(
        lead_id=lead_id,
        deal_id=deal_id,
        owner=owner,
        stage="discovery",
        probability=10,
        currency="EUR",
        created_at=at,
    )


async def funnel(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    r = await client.get("/v1/funnel", params=params, headers=MANAGER)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def load(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/v1/load", headers=MANAGER)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_a_lead_walking_the_whole_funnel_is_counted_at_every_stage(service: Service) -> None:
    client, runtime = service
    start = utcnow() - timedelta(minutes=10)
    await deliver(runtime, captured("L1", start, source="ads", campaign="spring"))
    await deliver(runtime, scored("L1", True, start + timedelta(minutes=1)))
    await deliver(runtime, assigned("L1", "sdr-1"))
    await deliver(runtime, LeadAccepted(lead_id="L1", owner="sdr-1", accepted_at=utcnow()))
    await deliver(
        runtime, LeadQualified(lead_id="L1", owner="sdr-1", framework="bant", qualified_at=utcnow())
    )
    await deliver(runtime, assigned("L1", "ae-1", role="ae"))
    await deliver(runtime, deal_created("L1", "D1", "ae-1", utcnow()))
    await deliver(
        runtime,
        DealWon(
            lead_id="L1",
            deal_id="D1",
            owner="ae-1",
            amount=Decimal("1200.00"),
            currency="EUR",
            closed_at=utcnow(),
        ),
    )
    await deliver(
        runtime,
        AccountAssigned(
            lead_id="L1", owner="am-1", deal_id="D1", rule="r", strategy="s", reason="won"
        ),
    )

    body = await funnel(client)
    assert [(s["stage"], s["count"]) for s in body["steps"]] == [
        ("captured", 1),
        ("mql", 1),
        ("assigned", 1),
        ("qualified", 1),
        ("deal", 1),
        ("won", 1),
    ]
    assert body["counts"]["accepted"] == 1 and body["counts"]["am_assigned"] == 1
    assert body["steps"][1]["time_from_previous"]["median_seconds"] == 60.0
    # Captured ten minutes ago, assigned just now.
    assert 590 <= body["speed_to_lead"]["median_seconds"] <= 630
    assert body["by_source"] == [{"source": "ads", "captured": 1, "mql": 1, "won": 1}]
    assert body["by_campaign"] == [{"campaign": "spring", "captured": 1, "mql": 1, "won": 1}]

    rep_load = await load(client)
    assert rep_load["sdr"] == []  # qualified: no longer the SDR's open work
    assert rep_load["ae"] == []  # the deal is won
    assert rep_load["am"] == [{"rep": "am-1", "accounts": 1}]


async def test_mql_time_is_the_first_scoring_that_crossed_the_threshold(service: Service) -> None:
    client, runtime = service
    t0 = utcnow() - timedelta(hours=1)
    await deliver(runtime, captured("L1", t0))
    await deliver(runtime, scored("L1", False, t0 + timedelta(minutes=5)))
    await deliver(runtime, scored("L1", True, t0 + timedelta(minutes=10)))
    await deliver(runtime, scored("L1", True, t0 + timedelta(minutes=30)))

    body = await funnel(client)
    mql = body["steps"][1]
    assert mql["count"] == 1
    assert mql["time_from_previous"]["median_seconds"] == 600.0


async def test_funnel_counts_only_leads_captured_in_the_window(service: Service) -> None:
    client, runtime = service
    base = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    await deliver(runtime, captured("early", base - timedelta(days=1)))
    await deliver(runtime, captured("inside", base))
    await deliver(runtime, captured("late", base + timedelta(days=1)))
    await deliver(runtime, assigned("late", "sdr-1"))  # never captured-in-window: ignored

    body = await funnel(
        client,
        **{"from": base.isoformat(), "to": (base + timedelta(days=1)).isoformat()},
    )
    assert body["counts"]["captured"] == 1
    assert body["window"] == {"from": "2026-10-01T12:00:00Z", "to": "2026-10-02T12:00:00Z"}
    everything = await funnel(client)
    assert everything["counts"]["captured"] == 3


async def test_redelivered_events_have_no_second_effect(service: Service) -> None:
    client, runtime = service
    breach = LeadSlaBreached(lead_id="L1", role="sdr", owner="sdr-1", sla_due_at=utcnow())
    assert await deliver(runtime, captured("L1", utcnow()), event_id="e-cap")
    assert await deliver(runtime, breach, event_id="e-breach")
    assert not await deliver(runtime, captured("L1", utcnow()), event_id="e-cap")
    assert not await deliver(runtime, breach, event_id="e-breach")

    body = await funnel(client)
    assert body["counts"]["captured"] == 1
    assert body["sla_breaches"] == 1
    sla = (await client.get("/v1/sla", headers=MANAGER)).json()
    assert sla["total"] == 1


async def test_sla_breaches_are_listed_newest_first_with_rep_and_time(service: Service) -> None:
    client, runtime = service
    due = utcnow() - timedelta(minutes=30)
    for lead_id, owner in [("L1", "sdr-1"), ("L2", "sdr-2"), ("L3", "sdr-1")]:
        await deliver(
            runtime, LeadSlaBreached(lead_id=lead_id, role="sdr", owner=owner, sla_due_at=due)
        )

    r = await client.get("/v1/sla", params={"limit": 2}, headers=MANAGER)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 3
    assert [(b["lead_id"], b["owner"]) for b in body["breaches"]] == [
        ("L3", "sdr-1"),
        ("L2", "sdr-2"),
    ]
    assert body["breaches"][0]["breached_at"] >= body["breaches"][1]["breached_at"]
    assert datetime.fromisoformat(body["breaches"][0]["sla_due_at"]) == due


async def test_sdr_load_counts_open_leads_until_qualified_disqualified_or_recycled(
    service: Service,
) -> None:
    client, runtime = service
    for lead_id in ["L1", "L2", "L3", "L4"]:
        await deliver(runtime, assigned(lead_id, "sdr-1"))
    await deliver(runtime, assigned("L5", "sdr-2"))
    await deliver(runtime, LeadAccepted(lead_id="L1", owner="sdr-1", accepted_at=utcnow()))
    await deliver(runtime, LeadDisqualified(lead_id="L2", owner="sdr-1", reason="no budget"))
    await deliver(runtime, LeadRecycled(lead_id="L3", owner="sdr-1", reason="later"))

    assert (await load(client))["sdr"] == [
        {"rep": "sdr-1", "open_leads": 2, "awaiting_acceptance": 1},
        {"rep": "sdr-2", "open_leads": 1, "awaiting_acceptance": 1},
    ]


async def test_reassignment_moves_the_open_lead_to_the_new_sdr(service: Service) -> None:
    client, runtime = service
    await deliver(runtime, assigned("L1", "sdr-1"))
    await deliver(
        runtime,
        LeadReassigned(
            lead_id="L1", role="sdr", previous_owner="sdr-1", owner="sdr-2", reason="sla"
        ),
    )
    assert (await load(client))["sdr"] == [
        {"rep": "sdr-2", "open_leads": 1, "awaiting_acceptance": 1}
    ]


async def test_a_qualification_overtaking_its_assignment_leaves_the_lead_closed(
    service: Service,
) -> None:
    client, runtime = service
    # The two come from different topics; the console may see them in either order.
    assignment_time = utcnow() - timedelta(minutes=5)
    await deliver(
        runtime,
        LeadQualified(lead_id="L1", owner="sdr-1", framework="bant", qualified_at=utcnow()),
    )
    async with runtime.db.transaction() as session:
        event = CloudEvent(
            type="lead.assigned",
            source="test",
            subject="L1",
            data={},
            time=assignment_time,
        )
        await record_assignment(session, event, assigned("L1", "sdr-1"))
    assert (await load(client))["sdr"] == []


async def test_ae_load_is_open_deals_following_the_deal_owner(service: Service) -> None:
    client, runtime = service
    now = utcnow()
    await deliver(runtime, deal_created("L1", "D1", "ae-1", now))
    await deliver(runtime, deal_created("L2", "D2", "ae-1", now))
    await deliver(runtime, deal_created("L3", "D3", "ae-2", now))
    await deliver(
        runtime,
        DealLost(lead_id="L2", deal_id="D2", owner="ae-1", currency="EUR", closed_at=now),
    )
    await deliver(
        runtime,
        DealStageChanged(
            lead_id="L3",
            deal_id="D3",
            owner="ae-3",
            from_stage="discovery",
            to_stage="demo",
            probability=20,
            changed_at=now,
        ),
    )
    assert (await load(client))["ae"] == [
        {"rep": "ae-1", "open_deals": 1},
        {"rep": "ae-3", "open_deals": 1},
    ]


async def test_erasure_removes_source_and_campaign_and_a_late_capture_cannot_restore_them(
    service: Service,
) -> None:
    client, runtime = service
    await deliver(runtime, captured("L1", utcnow(), source="ads", campaign="spring"))
    await deliver(runtime, LeadErased(lead_id="L1", erased_at=utcnow()))
    # A capture redelivered (new id) after the erasure, e.g. from a lagging partition.
    await deliver(runtime, captured("L1", utcnow(), source="ads", campaign="spring"))

    async with runtime.db.transaction() as session:
        journey = await session.get(LeadJourney, "L1")
    assert journey is not None
    assert (journey.source, journey.campaign) == (None, None)
    assert journey.erased_at is not None
    body = await funnel(client)
    assert body["counts"]["captured"] == 1  # the anonymous count stays
    assert body["by_source"] == [{"source": None, "captured": 1, "mql": 0, "won": 0}]
    assert body["by_campaign"] == [{"campaign": None, "captured": 1, "mql": 0, "won": 0}]


async def test_console_never_stores_the_leads_personal_data(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L1", utcnow(), source="ads"))
    async with runtime.db.transaction() as session:
        journey = await session.get(LeadJourney, "L1")
    assert journey is not None
    stored = {c.key: getattr(journey, c.key) for c in LeadJourney.__table__.columns}
    assert "L1@example.com" not in {str(v) for v in stored.values()}
    assert not {"email", "first_name", "last_name", "company", "phone"} & set(stored)


async def test_console_emits_no_events(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L1", utcnow()))
    await deliver(runtime, LeadErased(lead_id="L1", erased_at=utcnow()))
    assert await outbox_events(runtime) == []


async def test_non_mql_scores_and_ae_assignments_do_not_move_the_funnel(service: Service) -> None:
    client, runtime = service
    await deliver(runtime, captured("L1", utcnow()))
    await deliver(runtime, scored("L1", False, utcnow()))
    await deliver(runtime, assigned("L1", "ae-1", role="ae"))
    body = await funnel(client)
    assert body["counts"]["mql"] == 0 and body["counts"]["assigned"] == 0
    assert (await load(client))["sdr"] == []


async def test_a_fetched_batch_of_mixed_events_builds_the_same_read_model(
    service: Service,
) -> None:
    client, runtime = service
    t0 = utcnow() - timedelta(minutes=5)
    leads = [f"B{i}" for i in range(5)]
    batch: list[Any] = [captured(lead, t0) for lead in leads]
    batch += [scored(lead, True, t0 + timedelta(seconds=1)) for lead in leads]
    batch += [assigned(lead, f"sdr-{i % 2}") for i, lead in enumerate(leads)]
    batch += [captured("B0", t0 - timedelta(minutes=1))]  # a re-capture: earliest time wins
    handled = await deliver_batch(runtime, batch)
    assert handled == [True] * len(batch)
    body = await funnel(client)
    counts = body["counts"]
    assert (counts["captured"], counts["mql"], counts["assigned"]) == (5, 5, 5)
    async with runtime.db.read() as session:
        first = await session.get(LeadJourney, "B0")
        assert first is not None and first.captured_at == t0 - timedelta(minutes=1)
    sdrs = {row["rep"]: row["open_leads"] for row in (await load(client))["sdr"]}
    assert sdrs == {"sdr-0": 3, "sdr-1": 2}
