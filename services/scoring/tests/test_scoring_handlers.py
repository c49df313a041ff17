"""Kafka handlers, run as the consumer runs them (idempotently, via ``deliver``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from leadflow_scoring.models import (
    EngagementRow,
    ErasedLead,
    LeadOwner,
    LeadProfileRow,
    LeadScoreRow,
)
from leadflow_shared.events import (
    EngagementRecorded,
    LeadAssigned,
    LeadCaptured,
    LeadErased,
    LeadMerged,
    LeadRecycled,
    LeadUpdated,
)
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, outbox_events

Service = tuple[httpx.AsyncClient, ServiceRuntime]
MANAGER = auth_header("manager", "boss")
IDEAL: dict[str, Any] = {"employees": 250, "title": "VP Marketing", "country": "US"}


def captured(lead_id: str, **profile: Any) -> LeadCaptured:
    return LeadCaptured(lead_id=lead_id, email="ann@example.com", captured_at=utcnow(), **profile)


def engagement(lead_id: str, type_: str, *, days_ago: float = 0) -> EngagementRecorded:
    return EngagementRecorded(
        lead_id=lead_id,
        engagement_id=new_id(),
        type=type_,
        occurred_at=utcnow() - timedelta(days=days_ago),
    )


async def scored(runtime: ServiceRuntime, lead_id: str) -> list[dict[str, Any]]:
    return [e for e in await outbox_events(runtime, "lead.scored") if e["lead_id"] == lead_id]


async def rows_for(runtime: ServiceRuntime, lead_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with runtime.db.transaction() as session:
        for model in (LeadProfileRow, EngagementRow, LeadScoreRow, LeadOwner, ErasedLead):
            query = select(func.count()).select_from(model).where(model.lead_id == lead_id)
            counts[model.__tablename__] = await session.scalar(query) or 0
    return counts


async def test_captured_ideal_lead_is_scored_as_new_mql(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L1", **IDEAL, company="Acme"))
    [event] = await scored(runtime, "L1")
    assert event["score"] == 55 and event["fit"] == 55 and event["engagement"] == 0
    assert event["mql"] is True and event["became_mql"] is True
    assert event["grade"] == "C"
    assert event["rules_version"] == 1
    assert sum(f["points"] for f in event["explanation"]) == 55
    assert {"factor": "has company", "points": 5} in event["explanation"]


async def test_redelivered_capture_has_no_second_effect(service: Service) -> None:
    _, runtime = service
    event_id = new_id()
    assert await deliver(runtime, captured("L1", **IDEAL), event_id=event_id) is True
    assert await deliver(runtime, captured("L1", **IDEAL), event_id=event_id) is False
    assert len(await scored(runtime, "L1")) == 1


async def test_lead_that_is_not_a_fit_is_scored_without_mql(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L2", title="Student", country="BR"))
    [event] = await scored(runtime, "L2")
    assert (event["score"], event["mql"], event["became_mql"], event["grade"]) == (
        0,
        False,
        False,
        "D",
    )
    assert event["explanation"] == []


async def test_engagement_pushing_lead_over_threshold_makes_it_an_mql_once(
    service: Service,
) -> None:
    _, runtime = service
    await deliver(runtime, captured("L3", employees=300, country="US"))  # fit 30
    await deliver(runtime, engagement("L3", "pricing_page_view"))  # 45
    await deliver(runtime, engagement("L3", "demo_request"))  # 85 -> MQL
    await deliver(runtime, engagement("L3", "webinar_attended"))  # 95, still MQL
    events = await scored(runtime, "L3")
    assert [e["score"] for e in events] == [30, 45, 85, 95]
    assert [e["mql"] for e in events] == [False, False, True, True]
    assert [e["became_mql"] for e in events] == [False, False, True, False]
    assert {"factor": "engagement: demo_request x1", "points": 40} in events[-1]["explanation"]


async def test_mql_is_sticky_when_the_score_later_drops(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L4", **IDEAL))
    downgraded = {**IDEAL, "title": "Intern"}
    await deliver(
        runtime,
        LeadUpdated(lead_id="L4", email="a@x.io", changed_fields=["title"], **downgraded),
    )
    await deliver(runtime, captured("L4", **IDEAL))  # back above: not a second MQL
    events = await scored(runtime, "L4")
    assert [e["score"] for e in events] == [50, 30, 50]
    assert [e["mql"] for e in events] == [True, True, True]
    assert [e["became_mql"] for e in events] == [True, False, False]


async def test_merged_profile_replaces_the_stored_one(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L5", **IDEAL, company="Acme"))
    await deliver(
        runtime,
        LeadMerged(lead_id="L5", email="a@x.io", employees=10, changed_fields=["employees"]),
    )
    events = await scored(runtime, "L5")
    assert events[-1]["score"] == 0
    async with runtime.db.transaction() as session:
        profile = await session.get(LeadProfileRow, "L5")
        assert profile is not None
        assert (profile.employees, profile.title, profile.company) == (10, None, None)


async def test_engagement_before_profile_is_kept_and_scored_when_profile_arrives(
    service: Service,
) -> None:
    _, runtime = service
    await deliver(runtime, engagement("L6", "demo_request"))
    assert await scored(runtime, "L6") == []
    await deliver(runtime, captured("L6", country="US"))
    [event] = await scored(runtime, "L6")
    assert event["score"] == 50 and event["became_mql"] is True
    assert {"factor": "engagement: demo_request x1", "points": 40} in event["explanation"]


async def test_same_engagement_under_a_new_event_id_counts_once(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L7"))
    click = engagement("L7", "pricing_page_view")
    await deliver(runtime, click)
    assert await deliver(runtime, click) is True  # a new event id: handled...
    events = await scored(runtime, "L7")
    assert [e["engagement"] for e in events] == [0, 15]  # ...but not counted again


async def test_old_engagement_is_worth_less(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L8"))
    await deliver(runtime, engagement("L8", "demo_request", days_ago=30))
    assert (await scored(runtime, "L8"))[-1]["engagement"] == 20


async def test_erasure_deletes_everything_held_about_the_lead(service: Service) -> None:
    client, runtime = service
    await deliver(runtime, captured("L9", **IDEAL, company="Acme"))
    await deliver(runtime, engagement("L9", "demo_request"))
    await deliver(runtime, captured("other", **IDEAL))
    await deliver(
        runtime,
        LeadAssigned(lead_id="L9", role="sdr", owner="sdr-1", rule="r", strategy="s", reason="x"),
    )
    await deliver(runtime, LeadErased(lead_id="L9", erased_at=utcnow()))
    assert await rows_for(runtime, "L9") == {
        "lead_profiles": 0,
        "engagements": 0,
        "lead_scores": 0,
        "lead_owners": 0,
        "erased_leads": 1,
    }
    assert (await client.get("/v1/scores/L9", headers=MANAGER)).status_code == 404
    assert (await client.get("/v1/scores/other", headers=MANAGER)).status_code == 200


async def test_events_after_erasure_do_not_recreate_personal_data(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L10", **IDEAL))
    await deliver(runtime, LeadErased(lead_id="L10", erased_at=utcnow()))
    await deliver(runtime, engagement("L10", "demo_request"))
    await deliver(runtime, captured("L10", **IDEAL))
    assert len(await scored(runtime, "L10")) == 1  # only the one before erasure
    counts = await rows_for(runtime, "L10")
    assert counts["lead_profiles"] == counts["engagements"] == counts["lead_scores"] == 0


async def test_redelivered_erasure_is_harmless(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("L11", **IDEAL))
    await deliver(runtime, LeadErased(lead_id="L11", erased_at=utcnow()))
    assert await deliver(runtime, LeadErased(lead_id="L11", erased_at=utcnow())) is True
    assert (await rows_for(runtime, "L11"))["erased_leads"] == 1


async def test_new_rules_version_applies_to_the_next_event_only(service: Service) -> None:
    client, runtime = service
    await deliver(runtime, captured("L12", **IDEAL))
    rules = (await client.get("/v1/scoring/rules", headers=MANAGER)).json()["rules"]
    rules["mql_threshold"] = 90
    rules["fit"][0]["points"] = 30  # company size 200+
    put = await client.put("/v1/scoring/rules", json=rules, headers=MANAGER)
    assert put.status_code == 200 and put.json()["version"] == 2

    stale = (await client.get("/v1/scores/L12", headers=MANAGER)).json()
    assert (stale["rules_version"], stale["score"]) == (1, 50)  # not recomputed on PUT

    await deliver(runtime, engagement("L12", "email_open"))
    fresh = (await scored(runtime, "L12"))[-1]
    assert (fresh["rules_version"], fresh["score"]) == (2, 61)
    assert fresh["mql"] is True  # an MQL stays an MQL under stricter rules


async def test_recycle_resets_the_mql_so_renewed_engagement_makes_an_mql_again(
    service: Service,
) -> None:
    client, runtime = service
    await deliver(runtime, captured("R1", **IDEAL, company="Acme"))  # 55: MQL
    await deliver(runtime, engagement("R1", "page_view"))
    assert [e["became_mql"] for e in await scored(runtime, "R1")] == [True, False]
    await deliver(runtime, LeadRecycled(lead_id="R1", owner="sdr-1", reason="no budget yet"))
    body = (await client.get("/v1/scores/R1", headers=MANAGER)).json()
    assert body["mql"] is False and body["score"] == 56  # the score itself stays
    assert len(await scored(runtime, "R1")) == 2  # a recycle announces nothing itself
    await deliver(runtime, engagement("R1", "pricing_page_view"))
    last = (await scored(runtime, "R1"))[-1]
    assert last["mql"] is True and last["became_mql"] is True  # routing routes it again
    await deliver(runtime, engagement("R1", "page_view"))
    assert (await scored(runtime, "R1"))[-1]["became_mql"] is False  # once per cycle
    assert (await client.get("/v1/scores/R1", headers=MANAGER)).json()["mql"] is True


async def test_recycle_of_an_unscored_lead_is_harmless(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, LeadRecycled(lead_id="R2", owner="sdr-1", reason="x"))
    await deliver(runtime, captured("R2", **IDEAL))
    [event] = await scored(runtime, "R2")
    assert event["became_mql"] is True


async def test_hand_raise_before_a_recycle_does_not_make_an_mql_again(service: Service) -> None:
    _, runtime = service
    await deliver(runtime, captured("R3", country="US", company="Acme"))  # 15: fit C
    await deliver(runtime, engagement("R3", "trial_signup"))  # 45 < 50, but a hand-raise
    assert [e["became_mql"] for e in await scored(runtime, "R3")] == [False, True]
    await deliver(runtime, LeadRecycled(lead_id="R3", owner="sdr-1", reason="nurture"))
    await deliver(runtime, engagement("R3", "page_view"))  # 46, the hand-raise was before
    assert (await scored(runtime, "R3"))[-1]["mql"] is False
    await deliver(runtime, engagement("R3", "contact_sales"))  # a new hand-raise
    assert (await scored(runtime, "R3"))[-1]["became_mql"] is True


async def test_fit_grade_and_engagement_level_on_lead_scored_and_the_score(
    service: Service,
) -> None:
    client, runtime = service
    await deliver(runtime, captured("G1", **IDEAL, company="Acme"))  # fit 55: A
    await deliver(runtime, engagement("G1", "pricing_page_view"))  # 15: level 2
    await deliver(runtime, engagement("G1", "demo_request"))  # 55: level 3
    events = await scored(runtime, "G1")
    assert [(e["fit_grade"], e["engagement_level"]) for e in events] == [
        ("A", 1),
        ("A", 2),
        ("A", 3),
    ]
    body = (await client.get("/v1/scores/G1", headers=MANAGER)).json()
    assert (body["fit_grade"], body["engagement_level"]) == ("A", 3)
    assert body["grade"] == "A"  # the score's grade (110) is unchanged beside them
