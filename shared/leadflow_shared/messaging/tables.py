"""The outbox and processed-event tables every service's database carries."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table

from leadflow_shared.db import UtcDateTime


@dataclass(frozen=True)
class MessagingTables:
    outbox: Table
    processed_events: Table
    broker_epochs: Table


def define_messaging_tables(metadata: MetaData) -> MessagingTables:
    """Add ``outbox`` and ``processed_events`` to a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        # BIGINT on PostgreSQL; SQLite autoincrements only INTEGER PRIMARY KEY.
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
        Column("event_id", String(64), nullable=False, unique=True),
        Column("aggregate_type", String(40), nullable=False),
        Column("aggregate_id", String(64), nullable=False),
        Column("topic", String(200), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("key", String(200), nullable=False),
        Column("source", String(200), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("traceparent", String(60), nullable=True),
        # The event's lane ("bulk" or null): kept so a republish from the table keeps it.
        Column("lane", String(20), nullable=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("sent_at", UtcDateTime, nullable=True, index=True),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", String(100), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(100), nullable=False),
        # Housekeeping deletes by age: indexed, or every prune scans the whole table.
        Column("processed_at", UtcDateTime, nullable=False, index=True),
    )
    # The brokers this database has published to (``LEADFLOW_BROKER_EPOCH``): a broker that
    # keeps topics in memory loses them when it restarts, so the relay republishes what it
    # sent since the previous one began (``OutboxRelay.adopt_broker_epoch``).
    broker_epochs = Table(
        "broker_epochs",
        metadata,
        Column("epoch", String(64), primary_key=True),
        Column("first_seen_at", UtcDateTime, nullable=False),
        Column("republished", Integer, nullable=False),
    )
    return MessagingTables(outbox=outbox, processed_events=processed, broker_epochs=broker_epochs)
