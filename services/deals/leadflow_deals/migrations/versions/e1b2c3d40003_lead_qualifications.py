"""lead qualifications: the SDR's qualification shown on the lead's deals

Revision ID: e1b2c3d40003
Revises: d0a1e7b40002
Create Date: 2026-12-06 01:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadflow_shared.db import UtcDateTime

revision: str = "e1b2c3d40003"
down_revision: str | Sequence[str] | None = "d0a1e7b40002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_qualifications",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("framework", sa.String(length=20), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("notes", sa.String(length=5000), nullable=True),
        sa.Column("qualified_by", sa.String(length=100), nullable=False),
        sa.Column("qualified_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("lead_id"),
    )


def downgrade() -> None:
    op.drop_table("lead_qualifications")
