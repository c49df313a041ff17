from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from leadflow_console.main import create_app
from leadflow_console.settings import ConsoleSettings
from leadflow_shared.service import ServiceRuntime
from leadflow_shared.testing import running_service


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, ServiceRuntime]]:
    async with running_service(create_app, ConsoleSettings, tmp_path) as running:
        yield running
