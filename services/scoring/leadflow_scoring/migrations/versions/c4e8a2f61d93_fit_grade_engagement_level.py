"""fit grade and engagement level on lead_scores

Revision ID: c4e8a2f61d93
Revises: b7c3d91e2f40
Create Date: 2026-11-28 17:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a2f61d93"
down_revision: str | Sequence[str] | None = "b7c3d91e2f40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lead_scores") as batch:
        batch.add_column(sa.Column("fit_grade", sa.String(length=1), nullable=True))
        batch.add_column(sa.Column("engagement_level", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_scores") as batch:
        batch.drop_column("engagement_level")
        batch.drop_column("fit_grade")
