"""decision replay: decisions keep their inputs; directory snapshots per config version

Each routing decision records the configuration version it was made under, the rules
version, its inputs (lead attributes, excluded reps, counters) and how long it took;
``config_snapshots`` keeps the directory of each configuration version. The version in
force when this migration runs is snapshotted here, so decisions made under it replay.

Revision ID: c3d9e8f20006
Revises: b7e2c4a10005
Create Date: 2026-11-28 16:30:00

"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import leadflow_shared.db
from leadflow_shared.ids import utcnow

revision: str = "c3d9e8f20006"
down_revision: str | Sequence[str] | None = "b7e2c4a10005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REP_FIELDS = (
    "id",
    "role",
    "team",
    "territories",
    "segments",
    "capacity_per_day",
    "weight",
    "working_hours",
    "out_of_office",
    "out_of_office_until",
    "out_of_office_periods",
    "active",
    "manager",
)


def _rep(row: Any) -> dict[str, Any]:
    """A rep as ``team.availability.rep_snapshot`` writes it."""
    data = {name: getattr(row, name) for name in REP_FIELDS}
    until = data["out_of_office_until"]
    data["out_of_office_until"] = until.isoformat() if until is not None else None
    data["territories"] = list(data["territories"] or [])
    data["segments"] = list(data["segments"] or [])
    data["out_of_office_periods"] = list(data["out_of_office_periods"] or [])
    data["out_of_office"] = bool(data["out_of_office"])
    data["active"] = bool(data["active"])
    return data


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("config_version", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("rules_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("inputs", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("duration_ms", sa.Float(), nullable=True))
    snapshots = op.create_table(
        "config_snapshots",
        sa.Column("version", sa.String(length=36), nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("reps", sa.JSON(), nullable=False),
        sa.Column("created_at", leadflow_shared.db.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    bind = op.get_bind()
    version = bind.execute(sa.text("SELECT version FROM config_version WHERE id = 1")).scalar()
    if version is None:
        return
    json_fields = {"territories", "segments", "working_hours", "out_of_office_periods"}
    reps_table = sa.table(
        "reps",
        *(
            sa.column(
                name,
                sa.JSON()
                if name in json_fields
                else leadflow_shared.db.UtcDateTime()
                if name == "out_of_office_until"
                else sa.String(),
            )
            for name in REP_FIELDS
        ),
    )
    reps = [_rep(row) for row in bind.execute(sa.select(reps_table).order_by(reps_table.c.id))]
    rules = bind.execute(sa.text("SELECT max(version) FROM rule_sets")).scalar()
    op.bulk_insert(
        snapshots,
        [
            {
                "version": version,
                "rules_version": rules or 0,
                "reps": reps,
                "created_at": utcnow(),
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("config_snapshots")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("duration_ms")
        batch.drop_column("inputs")
        batch.drop_column("rules_version")
        batch.drop_column("config_version")
