"""Transactional outbox, relay, idempotent consumer, retries and dead letters."""

from leadflow_shared.messaging.consumer import (
    Delivered,
    EventConsumer,
    HandlerRegistry,
    PermanentError,
)
from leadflow_shared.messaging.kafka import create_topics, new_producer
from leadflow_shared.messaging.outbox import Outbox, OutboxRelay
from leadflow_shared.messaging.tables import MessagingTables, define_messaging_tables

__all__ = [
    "Delivered",
    "EventConsumer",
    "HandlerRegistry",
    "MessagingTables",
    "Outbox",
    "OutboxRelay",
    "PermanentError",
    "create_topics",
    "define_messaging_tables",
    "new_producer",
]
