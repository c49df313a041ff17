"""No delivery to private or loopback addresses unless configuration allows it."""

from __future__ import annotations

import httpx
import pytest

from leadflow_shared.events import LeadCaptured
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import auth_header, deliver
from leadflow_webhooks.guarded_transport import AddressNotAllowed, GuardedNetworkBackend
from leadflow_webhooks.sender import Message, new_http_client, send_attempt
from leadflow_webhooks.target_policy import TargetPolicy
from leadflow_webhooks.testing import Receiver, register, settled

Service = tuple[httpx.AsyncClient, ServiceRuntime]
CRM = auth_header("integration", "crm")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ],
)
async def test_literal_private_addresses_are_refused_at_registration(
    strict_service: Service, url: str
) -> None:
    client, _ = strict_service
    r = await client.post("/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=CRM)
    assert r.status_code == 422, r.text
    assert r.json()["fields"][0]["field"] == "url"
    assert "not allowed" in r.json()["fields"][0]["message"]


async def test_a_host_name_resolving_to_loopback_is_refused_at_connection_time(
    strict_service: Service, receiver: Receiver
) -> None:
    client, runtime = strict_service
    # "localhost" passes registration (it is a name) but resolves to 127.0.0.1 / ::1.
    sub = await register(client, f"http://localhost:{receiver.port}/hooks")
    await deliver(runtime, LeadCaptured(lead_id=new_id(), email="a@x.io", captured_at=utcnow()))
    [delivery] = await settled(client, sub["id"])
    assert delivery["status"] == "failed"
    assert delivery["last_error"] == "address not allowed"
    assert delivery["attempts"] == 1  # refused, not retried
    assert receiver.received == []


async def test_allowed_cidrs_open_a_private_network_and_nothing_else(receiver: Receiver) -> None:
    message = Message(id="msg_1", url=receiver.url, secret="whsec_AAAA", body=b"{}")
    allowed = new_http_client(TargetPolicy.from_settings(False, ["127.0.0.0/8"]))
    other = new_http_client(TargetPolicy.from_settings(False, ["10.0.0.0/8"]))
    async with allowed, other:
        assert (await send_attempt(allowed, message, 2)).status_code == 200
        refused = await send_attempt(other, message, 2)
    assert refused.blocked and refused.error == "address not allowed"
    assert len(receiver.received) == 1


async def test_dns_rebinding_is_caught_because_every_resolved_address_is_vetted() -> None:
    answers = {"rebind.example": ["93.184.216.34", "127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    backend = GuardedNetworkBackend(TargetPolicy(), resolver=resolver)
    with pytest.raises(AddressNotAllowed):
        await backend.connect_tcp("rebind.example", 80)
    answers["rebind.example"] = ["::ffff:169.254.169.254"]
    with pytest.raises(AddressNotAllowed):
        await backend.connect_tcp("rebind.example", 80)


async def test_the_backend_connects_to_the_vetted_address(receiver: Receiver) -> None:
    connected: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        connected.append(host)
        return ["127.0.0.1"]

    backend = GuardedNetworkBackend(TargetPolicy(allow_private=True), resolver=resolver)
    stream = await backend.connect_tcp("receiver.test", receiver.port, timeout=2)
    try:
        assert stream.get_extra_info("server_addr")[0] == "127.0.0.1"
    finally:
        await stream.aclose()
    assert connected == ["receiver.test"]
