"""reps: manager and planned out-of-office periods

Revision ID: b7e2c4a10005
Revises: f0a1e7b40004
Create Date: 2026-11-28 16:10:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b7e2c4a10005"
down_revision: str | Sequence[str] | None = "f0a1e7b40004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reps") as batch:
        batch.add_column(sa.Column("out_of_office_periods", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("manager", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reps") as batch:
        batch.drop_column("manager")
        batch.drop_column("out_of_office_periods")
