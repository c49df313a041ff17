"""Changes to the messaging tables (``define_messaging_tables``) that every service's
migrations apply alike: each service's revision calls these, so the steps live once."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import leadflow_shared.db


def add_outbox_lane_and_processed_at_index() -> None:
    """Outbox rows keep their event's lane; processed ids are pruned by an indexed age."""
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.String(length=20), nullable=True))
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_processed_events_processed_at"), ["processed_at"], unique=False
        )


def drop_outbox_lane_and_processed_at_index() -> None:
    with op.batch_alter_table("processed_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_processed_events_processed_at"))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("lane")


def add_broker_epochs() -> None:
    """The brokers a service has published to, so a fresh in-memory broker is noticed."""
    op.create_table(
        "broker_epochs",
        sa.Column("epoch", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", leadflow_shared.db.UtcDateTime(), nullable=False),
        sa.Column("republished", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("epoch"),
    )


def drop_broker_epochs() -> None:
    op.drop_table("broker_epochs")
