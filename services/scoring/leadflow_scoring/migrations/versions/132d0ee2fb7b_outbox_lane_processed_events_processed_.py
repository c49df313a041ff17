"""outbox lane, processed_events processed_at index

Revision ID: 132d0ee2fb7b
Revises: 542b35cbdad6
Create Date: 2026-11-28 13:32:17.206697

"""
from typing import Sequence, Union

from leadflow_shared.messaging.schema_changes import (
    add_outbox_lane_and_processed_at_index,
    drop_outbox_lane_and_processed_at_index,
)
import leadflow_shared.db  # noqa: F401


# revision identifiers, used by Alembic.
revision: str = '132d0ee2fb7b'
down_revision: Union[str, Sequence[str], None] = '542b35cbdad6'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    add_outbox_lane_and_processed_at_index()


def downgrade() -> None:
    drop_outbox_lane_and_processed_at_index()
