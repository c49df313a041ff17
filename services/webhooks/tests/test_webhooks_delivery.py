"""Delivering to a real HTTP endpoint: signatures, retries, failure, manual retry, erasure."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from leadflow_shared.events import DealWon, LeadCaptured, LeadErased, LeadScored, LeadUpdated
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver, running_service
from leadflow_webhooks.main import create_app
from leadflow_webhooks.models import Delivery, DeliveryAttempt
from leadflow_webhooks.sender import Message, new_http_client, send_attempt
from leadflow_webhooks.settings import WebhooksSettings
from leadflow_webhooks.target_policy import TargetPolicy
from leadflow_webhooks.testing import (
    Receiver,
    deliveries_of,
    eventually,
    register,
    settled,
    start_receiver,
)

Service = tuple[httpx.AsyncClient, ServiceRuntime]
CRM = auth_header("integration", "crm")


def captured(lead_id: str, email: str = "ann@example.com") -> LeadCaptured:
    return LeadCaptured(lead_id=lead_id, email=email, first_name="Ann", captured_at=utcnow())


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """An independent reading of the Standard Webhooks spec, not the service's code."""
    key = base64.b64decode(secret[len("whsec_") :])
    to_sign = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1) for s in headers["webhook-signature"].split()]
    return any(v == "v1" and hmac.compare_digest(sig, expected) for v, sig in offered)


async def _first_attempt_failed(client: httpx.AsyncClient, subscription_id: str) -> dict[str, Any]:
    """Wait until the newest delivery failed once and waits (a long time) for its retry."""

    async def waiting_for_retry() -> bool:
        rows = await deliveries_of(client, subscription_id)
        return bool(rows) and rows[0]["attempts"] == 1

    await eventually(waiting_for_retry, what="the first failed attempt")
    pending = (await deliveries_of(client, subscription_id))[0]
    assert pending["status"] == "pending"
    assert datetime.fromisoformat(pending["next_attempt_at"]) > datetime.now(UTC)
    return pending


async def _received(receiver: Receiver, count: int) -> bool:
    return len(receiver.received) >= count


async def test_events_arrive_signed_in_the_standard_webhooks_format(
    service: Service, receiver: Receiver
) -> None:
    client, runtime = service
    sub = await register(client, receiver.url, ["lead.captured"])
    lead_id = new_id()
    await deliver(runtime, captured(lead_id), event_id="evt-1")
    [delivery] = await settled(client, sub["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 1 and delivery["last_status_code"] == 200
    assert delivery["event_id"] == "evt-1" and delivery["event_type"] == "lead.captured"
    [got] = receiver.received
    assert got.path == "/hooks"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["webhook-id"] == delivery["id"]
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert verify_standard_webhook(sub["secret"], got.headers, got.body)
    assert not verify_standard_webhook(
        "whsec_" + base64.b64encode(b"x" * 32).decode(), got.headers, got.body
    )
    body = json.loads(got.body)
    assert body["type"] == "lead.captured"
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    assert body["data"]["lead_id"] == lead_id and body["data"]["email"] == "ann@example.com"


async def test_only_matching_subscriptions_get_the_event(
    service: Service, receiver: Receiver
) -> None:
    client, runtime = service
    deals = await register(client, receiver.url + "/deals", ["deal.*"])
    leads = await register(client, receiver.url + "/leads", ["lead.captured", "lead.scored"])
    lead_id = new_id()
    await deliver(runtime, captured(lead_id))
    await deliver(
        runtime,
        DealWon(
            lead_id=lead_id,
            deal_id=new_id(),
            owner="ae-1",
            amount="1200.50",
            currency="EUR",
            closed_at=utcnow(),
        ),
    )
    assert [d["event_type"] for d in await settled(client, deals["id"])] == ["deal.won"]
    assert [d["event_type"] for d in await settled(client, leads["id"])] == ["lead.captured"]
    won = next(r for r in receiver.received if r.path == "/hooks/deals")
    assert json.loads(won.body)["data"]["amount"] == "1200.50"


async def test_a_redelivered_event_is_not_sent_twice(service: Service, receiver: Receiver) -> None:
    client, runtime = service
    sub = await register(client, receiver.url)
    event = captured(new_id())
    assert await deliver(runtime, event, event_id="evt-same") is True
    assert await deliver(runtime, event, event_id="evt-same") is False
    await settled(client, sub["id"])
    assert len(await deliveries_of(client, sub["id"])) == 1
    assert len(receiver.received) == 1


async def test_a_500_is_retried_with_the_same_webhook_id_until_it_succeeds(
    service: Service, receiver: Receiver
) -> None:
    client, runtime = service
    receiver.statuses.extend([500, 503])
    sub = await register(client, receiver.url)
    await deliver(runtime, captured(new_id()))
    [delivery] = await settled(client, sub["id"])
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3 and delivery["last_error"] is None
    ids = {r.headers["webhook-id"] for r in receiver.received}
    assert ids == {delivery["id"]} and len(receiver.received) == 3
    assert all(verify_standard_webhook(sub["secret"], r.headers, r.body) for r in receiver.received)
    r = await client.get(f"/v1/webhooks/{sub['id']}/deliveries/{delivery['id']}", headers=CRM)
    log = r.json()["attempt_log"]
    assert [a["status_code"] for a in log] == [500, 503, 200]
    assert log[0]["error"] == "HTTP 500" and all(a["duration_ms"] >= 0 for a in log)


async def test_a_leads_later_event_waits_while_an_earlier_one_is_retried(
    service: Service, receiver: Receiver
) -> None:
    client, runtime = service
    receiver.statuses.extend([500, 500])
    sub = await register(client, receiver.url)
    lead_id = new_id()
    await deliver(runtime, captured(lead_id, "first@example.com"))
    await deliver(runtime, LeadUpdated(lead_id=lead_id, email="second@example.com"))
    await settled(client, sub["id"], count=2)
    emails = [json.loads(r.body)["data"]["email"] for r in receiver.received]
    assert emails == ["first@example.com"] * 3 + ["second@example.com"]


async def test_another_leads_event_is_not_held_behind_a_retry(
    patient_service: Service, receiver: Receiver
) -> None:
    client, runtime = patient_service
    receiver.statuses.append(500)
    sub = await register(client, receiver.url)
    await deliver(runtime, captured(new_id(), "stuck@example.com"))
    stuck = await _first_attempt_failed(client, sub["id"])
    await deliver(runtime, captured(new_id(), "other@example.com"))

    async def other_sent() -> bool:
        return len(receiver.received) == 2

    await eventually(other_sent, what="the other lead's delivery")
    assert json.loads(receiver.received[1].body)["data"]["email"] == "other@example.com"
    rows = await deliveries_of(client, sub["id"])
    assert [(d["id"], d["status"]) for d in rows][1] == (stuck["id"], "pending")


async def test_delivery_fails_once_the_schedule_is_exhausted(
    service: Service, receiver: Receiver
) -> None:
    client, runtime = service
    receiver.statuses.extend([500] * 10)
    sub = await register(client, receiver.url)
    await deliver(runtime, captured(new_id()))
    [delivery] = await settled(client, sub["id"])
    # One attempt plus one per delay of the [0.1, 0.2] schedule.
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert delivery["last_status_code"] == 500 and delivery["next_attempt_at"] is None
    assert len(receiver.received) == 3


async def test_redirects_are_not_followed(service: Service, receiver: Receiver) -> None:
    client, runtime = service
    receiver.statuses.extend([302] * 3)
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"
    sub = await register(client, receiver.url)
    await deliver(runtime, captured(new_id()))
    [delivery] = await settled(client, sub["id"])
    assert delivery["status"] == "failed" and delivery["last_status_code"] == 302
    assert len(receiver.received) == 3


async def test_manual_retry_requeues_a_failed_delivery(
    service: Service, receiver: Receiver
) -> None:
    client, runtime = service
    receiver.statuses.extend([500] * 3)
    sub = await register(client, receiver.url)
    await deliver(runtime, captured(new_id()))
    [failed] = await settled(client, sub["id"])
    assert failed["status"] == "failed"
    retry = f"/v1/webhooks/{sub['id']}/deliveries/{failed['id']}/retry"
    r = await client.post(retry, headers=CRM)
    assert r.status_code == 202, r.text
    [delivery] = await settled(client, sub["id"])
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 4
    assert {r.headers["webhook-id"] for r in receiver.received} == {failed["id"]}
    # A succeeded delivery may be resent too (the receiver lost it, say).
    assert (await client.post(retry, headers=CRM)).status_code == 202
    await eventually(lambda: _received(receiver, 5), what="the resend")


async def test_retrying_a_pending_delivery_is_409(
    patient_service: Service, receiver: Receiver
) -> None:
    client, runtime = patient_service
    receiver.statuses.append(500)
    sub = await register(client, receiver.url)
    await deliver(runtime, captured(new_id()))
    pending = await _first_attempt_failed(client, sub["id"])
    r = await client.post(f"/v1/webhooks/{sub['id']}/deliveries/{pending['id']}/retry", headers=CRM)
    assert r.status_code == 409


async def test_deliveries_are_listed_newest_first(service: Service, receiver: Receiver) -> None:
    client, runtime = service
    sub = await register(client, receiver.url)
    lead_id = new_id()
    await deliver(runtime, captured(lead_id))
    await deliver(
        runtime,
        LeadScored(
            lead_id=lead_id,
            score=80,
            fit=50,
            engagement=30,
            grade="A",
            mql=True,
            rules_version=1,
            scored_at=utcnow(),
        ),
    )
    rows = await settled(client, sub["id"], count=2)
    assert [d["event_type"] for d in rows] == ["lead.scored", "lead.captured"]
    # One lead's events reach one subscriber in order.
    types = [json.loads(r.body)["type"] for r in receiver.received]
    assert types == ["lead.captured", "lead.scored"]


async def test_erasure_removes_stored_payloads_and_is_still_announced(
    patient_service: Service, receiver: Receiver
) -> None:
    client, runtime = patient_service
    sub = await register(client, receiver.url)
    lead_id, other_lead = new_id(), new_id()
    await deliver(runtime, captured(lead_id, "erase.me@example.com"))
    await deliver(runtime, captured(other_lead, "keep@example.com"))
    await settled(client, sub["id"], count=2)
    # A delivery still waiting for its retry must not go out after the erasure.
    receiver.statuses.append(500)
    await deliver(runtime, LeadUpdated(lead_id=lead_id, email="erase.me@example.com"))
    await _first_attempt_failed(client, sub["id"])

    await deliver(runtime, LeadErased(lead_id=lead_id, erased_at=utcnow()))

    rows = await settled(client, sub["id"], count=4)
    assert [(d["event_type"], d["status"], d["payload_erased"]) for d in rows] == [
        ("lead.erased", "succeeded", False),
        ("lead.updated", "cancelled", True),
        ("lead.captured", "succeeded", False),
        ("lead.captured", "succeeded", True),
    ]
    erased_event = json.loads(receiver.received[-1].body)
    assert erased_event["type"] == "lead.erased" and erased_event["data"]["lead_id"] == lead_id
    async with runtime.db.transaction() as session:
        bodies = " ".join(b or "" for b in await session.scalars(select(Delivery.body)))
        errors = " ".join(e or "" for e in await session.scalars(select(DeliveryAttempt.error)))
    assert "erase.me@example.com" not in bodies + errors
    assert "keep@example.com" in bodies
    r = await client.post(f"/v1/webhooks/{sub['id']}/deliveries/{rows[3]['id']}/retry", headers=CRM)
    assert r.status_code == 409


async def test_a_slow_endpoint_does_not_hold_up_other_subscribers(tmp_path: Path) -> None:
    slow, fast = start_receiver(), start_receiver()
    settings = {
        "allow_private_targets": True,
        "max_concurrent_deliveries": 4,
        "max_concurrent_per_subscription": 2,
    }
    try:
        async with running_service(create_app, WebhooksSettings, tmp_path, **settings) as (
            client,
            runtime,
        ):
            slow.delay_s = 1.5
            slow_sub = await register(client, slow.url)
            fast_sub = await register(client, fast.url)
            for _ in range(6):
                await deliver(runtime, captured(new_id()))
            started = time.monotonic()
            await settled(client, fast_sub["id"], count=6)
            assert time.monotonic() - started < 1.2
            # The slow endpoint holds only its share of the four slots.
            rows = await deliveries_of(client, slow_sub["id"])
            assert sum(d["status"] == "pending" for d in rows) >= 4
            done = await settled(client, slow_sub["id"], count=6)
            assert [d["status"] for d in done] == ["succeeded"] * 6
    finally:
        for receiver in (slow, fast):
            receiver.server.shutdown()
            receiver.server.server_close()


async def test_an_endpoint_slower_than_the_timeout_counts_as_a_failed_attempt(
    receiver: Receiver,
) -> None:
    receiver.delay_s = 1.0
    message = Message(id="msg_1", url=receiver.url, secret="whsec_AAAA", body=b"{}")
    async with new_http_client(TargetPolicy(allow_private=True)) as http:
        outcome = await send_attempt(http, message, 0.3)
    assert outcome.error == "timeout after 0.3 s"
    assert outcome.status_code is None and not outcome.succeeded and not outcome.blocked
    assert 250 <= outcome.duration_ms < 1000
