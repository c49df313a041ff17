"""anonymous_engagements: touches for emails not known yet, attached on capture

Revision ID: a6c0e1000005
Revises: a6c0e1000004
Create Date: 2026-11-28 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadflow_shared.db import UtcDateTime

revision: str = "a6c0e1000005"
down_revision: str | Sequence[str] | None = "a6c0e1000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "anonymous_engagements",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("occurred_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("anonymous_engagements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_anonymous_engagements_email_key"), ["email_key"], unique=False
        )


def downgrade() -> None:
    op.drop_table("anonymous_engagements")
