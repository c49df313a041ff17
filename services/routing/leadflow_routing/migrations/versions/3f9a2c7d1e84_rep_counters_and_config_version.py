"""rep counters and config version

Per-rep counters kept by each decision instead of scans over history (rotation per pool,
leads assigned per UTC day, open leads per role), backfilled from the history; the
configuration version that cached rules and directory are checked against.

Revision ID: 3f9a2c7d1e84
Revises: 7cdf576de1bf
Create Date: 2026-11-28 13:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import leadflow_shared.db  # noqa: F401
from leadflow_shared.ids import new_id, utcnow


# revision identifiers, used by Alembic.
revision: str = '3f9a2c7d1e84'
down_revision: Union[str, Sequence[str], None] = '7cdf576de1bf'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# Open work per role, as routing's repository defines it (OPEN_STATUSES).
OPEN_WORK = {
    "sdr": "sdr IS NOT NULL AND status IN ('assigned', 'accepted')",
    "ae": "ae IS NOT NULL AND status = 'qualified'",
    "am": "am IS NOT NULL",
}


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('rep_counters',
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('rep_id', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.Column('last_at', leadflow_shared.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('kind', 'scope', 'rep_id')
    )
    op.create_table('config_version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=36), nullable=False),
    sa.Column('changed_at', leadflow_shared.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )

    # Backfill from history, in the migration's transaction.
    day = (
        "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        if op.get_bind().dialect.name == "postgresql"
        else "date(at)"
    )
    op.execute(
        "INSERT INTO rep_counters (kind, scope, rep_id, value, last_at) "
        "SELECT 'rotation', pool, rep_id, assigned_count, last_assigned_at FROM rotation"
    )
    op.execute(
        "INSERT INTO rep_counters (kind, scope, rep_id, value, last_at) "
        f"SELECT 'assigned_on', {day}, owner, count(*), max(at) FROM decisions "
        "WHERE kind IN ('assigned', 'reassigned') AND owner IS NOT NULL "
        f"GROUP BY {day}, owner"
    )
    for role, where in OPEN_WORK.items():
        op.execute(
            "INSERT INTO rep_counters (kind, scope, rep_id, value) "
            f"SELECT 'open', '{role}', {role}, count(*) FROM leads WHERE {where} GROUP BY {role}"
        )
    op.bulk_insert(
        sa.table(
            'config_version',
            sa.column('id', sa.Integer()),
            sa.column('version', sa.String()),
            sa.column('changed_at', leadflow_shared.db.UtcDateTime(timezone=True)),
        ),
        [{'id': 1, 'version': new_id(), 'changed_at': utcnow()}],
    )
    op.drop_table('rotation')


def downgrade() -> None:
    """Downgrade schema."""
    op.create_table('rotation',
    sa.Column('pool', sa.String(length=200), nullable=False),
    sa.Column('rep_id', sa.String(length=100), nullable=False),
    sa.Column('assigned_count', sa.Integer(), nullable=False),
    sa.Column('last_assigned_at', leadflow_shared.db.UtcDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('pool', 'rep_id')
    )
    op.execute(
        "INSERT INTO rotation (pool, rep_id, assigned_count, last_assigned_at) "
        "SELECT scope, rep_id, value, last_at FROM rep_counters WHERE kind = 'rotation'"
    )
    op.drop_table('config_version')
    op.drop_table('rep_counters')
