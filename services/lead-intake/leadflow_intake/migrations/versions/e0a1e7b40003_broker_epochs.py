"""broker epochs: notice a fresh in-memory broker and republish the outbox

Revision ID: e0a1e7b40003
Revises: 5e4cdd68529a
Create Date: 2026-11-28 15:40:00

"""

from collections.abc import Sequence

from leadflow_shared.messaging.schema_changes import add_broker_epochs, drop_broker_epochs

revision: str = "e0a1e7b40003"
down_revision: str | Sequence[str] | None = "5e4cdd68529a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_broker_epochs()


def downgrade() -> None:
    drop_broker_epochs()
