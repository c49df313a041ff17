"""accounts (admin CSV, won deals) and the lead's account match

Revision ID: a6c0e1000004
Revises: a6c0e1000003
Create Date: 2026-11-28 16:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from leadflow_shared.db import UtcDateTime

revision: str = "a6c0e1000004"
down_revision: str | Sequence[str] | None = "a6c0e1000003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("owner_role", sa.String(length=10), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("deal_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_name_key"), ["name_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accounts_updated_at"), ["updated_at"], unique=False)
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_column("account")
    op.drop_table("accounts")
