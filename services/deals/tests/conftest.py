from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from leadflow_deals.main import create_app
from leadflow_deals.settings import DealsSettings
from leadflow_shared.events import LeadAssigned
from leadflow_shared.ids import new_id
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import deliver, outbox_events, running_service

Service = tuple[httpx.AsyncClient, ServiceRuntime]
OpenDeal = Callable[..., Awaitable[str]]


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with running_service(create_app, DealsSettings, tmp_path) as running:
        yield running


def _ae_assigned(lead_id: str, owner: str, company: str | None = "Acme GmbH") -> LeadAssigned:
    return LeadAssigned(
        lead_id=lead_id,
        role="ae",
        owner=owner,
        rule="enterprise-emea",
        strategy="round_robin",
        reason="territory EMEA",
        company=company,
    )


@pytest.fixture
def open_deal(service: Service) -> OpenDeal:
    """Deliver an AE assignment for a new lead; returns the id of the deal it opened."""
    _, runtime = service

    async def _open(owner: str = "ae-1", company: str | None = "Acme GmbH") -> str:
        lead_id = new_id()
        assert await deliver(runtime, _ae_assigned(lead_id, owner, company))
        created = await outbox_events(runtime, "deal.created")
        (deal,) = [e for e in created if e["lead_id"] == lead_id]
        return str(deal["deal_id"])

    return _open
