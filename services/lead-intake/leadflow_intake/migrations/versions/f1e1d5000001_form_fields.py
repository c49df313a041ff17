"""forms: configurable fields (the embeddable form page)

Revision ID: f1e1d5000001
Revises: e0a1e7b40003
Create Date: 2026-11-28 15:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f1e1d5000001"
down_revision: str | Sequence[str] | None = "e0a1e7b40003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("forms", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fields", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("forms", schema=None) as batch_op:
        batch_op.drop_column("fields")
