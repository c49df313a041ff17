"""recycle resets the MQL: lead_scores.recycled_at

Revision ID: b7c3d91e2f40
Revises: a0a1e7b40005
Create Date: 2026-11-28 17:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadflow_shared.db import UtcDateTime

revision: str = "b7c3d91e2f40"
down_revision: str | Sequence[str] | None = "a0a1e7b40005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lead_scores") as batch:
        batch.add_column(sa.Column("recycled_at", UtcDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_scores") as batch:
        batch.drop_column("recycled_at")
