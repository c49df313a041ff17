"""leads: normalisation on capture (domain, flags, seniority, function, unnormalized);
email_normalized re-keyed with plus-addressing and gmail dots folded

Revision ID: a6c0e1000001
Revises: f1e1d5000001
Create Date: 2026-11-28 16:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a6c0e1000001"
down_revision: str | Sequence[str] | None = "f1e1d5000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _email_key(email: str) -> str:
    # The folding of leadflow_intake.normalise.email_key as of this revision.
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0] or local
    domain = {"googlemail.com": "gmail.com"}.get(domain, domain)
    if domain == "gmail.com":
        local = local.replace(".", "")
    return f"{local}@{domain}"


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("domain", sa.String(length=253), nullable=True))
        batch_op.add_column(sa.Column("free_mail", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("disposable", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("role_account", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("seniority", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("function", sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column("unnormalized", sa.JSON(), nullable=True))
    # Re-key known leads with the new folding; where two known leads fold to one key
    # the first keeps it and the other its old key (nothing is merged behind anyone's back).
    bind = op.get_bind()
    leads = sa.table(
        "leads",
        sa.column("id", sa.String),
        sa.column("email", sa.String),
        sa.column("email_normalized", sa.String),
    )
    rows = bind.execute(
        sa.select(leads.c.id, leads.c.email, leads.c.email_normalized)
        .where(leads.c.email.is_not(None))
        .order_by(leads.c.id)
    ).all()
    taken = {row.email_normalized for row in rows}
    for row in rows:
        key = _email_key(row.email)
        if key != row.email_normalized and key not in taken:
            bind.execute(sa.update(leads).where(leads.c.id == row.id).values(email_normalized=key))
            taken.add(key)


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        for name in (
            "unnormalized",
            "function",
            "seniority",
            "role_account",
            "disposable",
            "free_mail",
            "domain",
        ):
            batch_op.drop_column(name)
