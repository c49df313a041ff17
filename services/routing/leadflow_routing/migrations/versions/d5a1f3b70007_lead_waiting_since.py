"""leads: waiting_since (for rules' max_wait_minutes)

Revision ID: d5a1f3b70007
Revises: c3d9e8f20006
Create Date: 2026-11-28 16:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadflow_shared.db

revision: str = "d5a1f3b70007"
down_revision: str | Sequence[str] | None = "c3d9e8f20006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.add_column(
            sa.Column("waiting_since", leadflow_shared.db.UtcDateTime(), nullable=True)
        )
    # Leads already waiting count from their last `waiting` decision.
    op.execute(
        "UPDATE leads SET waiting_since = COALESCE("
        "(SELECT max(d.at) FROM decisions d WHERE d.lead_id = leads.id AND d.kind = 'waiting'),"
        " updated_at) "
        "WHERE status IN ('waiting_for_rep', 'waiting_for_ae', 'waiting_for_am')"
    )


def downgrade() -> None:
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("waiting_since")
