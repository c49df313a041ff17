"""lead profiles keep the domain signals from capture (fit rules may test them)

Revision ID: d5f9b3a70006
Revises: c4e8a2f61d93
Create Date: 2026-12-06 01:55:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5f9b3a70006"
down_revision: str | Sequence[str] | None = "c4e8a2f61d93"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FLAGS = ("free_mail", "disposable", "role_account")


def upgrade() -> None:
    with op.batch_alter_table("lead_profiles") as batch:
        batch.add_column(sa.Column("domain", sa.String(length=253), nullable=True))
        for flag in _FLAGS:
            batch.add_column(
                sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
            )
        batch.add_column(sa.Column("seniority", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("function", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("account_match", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lead_profiles") as batch:
        for name in ("account_match", "function", "seniority", *reversed(_FLAGS), "domain"):
            batch.drop_column(name)
