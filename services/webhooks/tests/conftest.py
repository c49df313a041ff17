from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import running_service
from leadflow_webhooks.main import create_app
from leadflow_webhooks.settings import WebhooksSettings
from leadflow_webhooks.testing import Receiver, start_receiver

Service = tuple[httpx.AsyncClient, ServiceRuntime]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = start_receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    """Private targets allowed (the receiver is on 127.0.0.1), a short retry schedule."""
    async with running_service(
        create_app,
        WebhooksSettings,
        tmp_path,
        allow_private_targets=True,
        retry_schedule_s=[0.1, 0.2],
        delivery_timeout_s=2.0,
        delivery_poll_interval_s=0.5,
    ) as running:
        yield running


@pytest.fixture
async def patient_service(tmp_path: Path) -> AsyncIterator[Service]:
    """Like ``service``, but a failed attempt waits a minute for its retry."""
    async with running_service(
        create_app,
        WebhooksSettings,
        tmp_path,
        allow_private_targets=True,
        retry_schedule_s=[60],
        delivery_timeout_s=2.0,
    ) as running:
        yield running


@pytest.fixture
async def strict_service(tmp_path: Path) -> AsyncIterator[Service]:
    """The production default: private and loopback targets refused."""
    async with running_service(
        create_app,
        WebhooksSettings,
        tmp_path,
        retry_schedule_s=[0.1, 0.2],
        delivery_timeout_s=2.0,
    ) as running:
        yield running
