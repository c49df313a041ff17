"""idempotency_keys.body_hash: the same Idempotency-Key with another body is refused

Revision ID: a6c0e1000002
Revises: a6c0e1000001
Create Date: 2026-11-28 16:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a6c0e1000002"
down_revision: str | Sequence[str] | None = "a6c0e1000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body_hash", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_column("body_hash")
