"""leads: merge history, first/last touch attribution, consent record

Revision ID: a6c0e1000003
Revises: a6c0e1000002
Create Date: 2026-11-28 17:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a6c0e1000003"
down_revision: str | Sequence[str] | None = "a6c0e1000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("history", "first_touch", "last_touch", "consent")


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
