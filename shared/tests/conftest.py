from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leadflow_shared.broker import EmbeddedBroker, free_port


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker (Tansu) for the messaging machinery's own tests."""
    log: Path = tmp_path_factory.mktemp("broker") / "broker.log"
    b = EmbeddedBroker(free_port(), log)
    b.start()
    yield b
    b.stop()
