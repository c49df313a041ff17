"""csv imports: lead_imports, import_rows (staging), import_rejections

Revision ID: b7e41c2d9a10
Revises: 6c100a70991e
Create Date: 2026-11-28 13:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadflow_shared.db

revision: str = "b7e41c2d9a10"
down_revision: str | Sequence[str] | None = "6c100a70991e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lead_imports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("filename", sa.String(length=300), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.Column("rejected_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", leadflow_shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", leadflow_shared.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", leadflow_shared.db.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("lead_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_imports_status"), ["status"], unique=False)
    op.create_table(
        "import_rows",
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("import_id", "row"),
    )
    op.create_table(
        "import_rejections",
        sa.Column("import_id", sa.String(length=36), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("import_id", "row"),
    )


def downgrade() -> None:
    op.drop_table("import_rejections")
    op.drop_table("import_rows")
    with op.batch_alter_table("lead_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_imports_status"))
    op.drop_table("lead_imports")
