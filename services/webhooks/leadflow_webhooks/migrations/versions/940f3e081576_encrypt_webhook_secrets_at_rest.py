"""encrypt webhook secrets at rest

A data migration: every plaintext ``whsec_…`` secret in ``subscriptions`` is encrypted with
the configured key (``LEADFLOW_SECRETS_KEY``); the downgrade decrypts them again.

Revision ID: 940f3e081576
Revises: b0a1e7b40006
Create Date: 2026-11-28 15:15:34.711610

"""
from typing import Sequence, Union

from alembic import op
import leadflow_shared.db  # noqa: F401
from leadflow_webhooks.secret_box import decrypt_rows, encrypt_plaintext_rows, migration_box


# revision identifiers, used by Alembic.
revision: str = '940f3e081576'
down_revision: Union[str, Sequence[str], None] = 'b0a1e7b40006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    encrypt_plaintext_rows(op.get_bind(), migration_box())


def downgrade() -> None:
    decrypt_rows(op.get_bind(), migration_box())
