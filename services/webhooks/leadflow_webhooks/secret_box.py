"""Webhook signing secrets at rest: Fernet-encrypted with a key from configuration.

The ``subscriptions.secret`` column holds a Fernet token (AES-128-CBC + HMAC-SHA256, from the
``cryptography`` package), never the ``whsec_…`` secret itself. The signer decrypts it for
each attempt. Key rotation follows MultiFernet: new values are encrypted with the current key
(``LEADFLOW_SECRETS_KEY``); values under any of the old keys (``LEADFLOW_SECRETS_OLD_KEYS``)
are still read, and re-encrypted with the current key when the service starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Connection, String, column, select, table, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow_webhooks.models import Subscription
from leadflow_webhooks.signing import SECRET_PREFIX

# base64 of b"leadflow-dev-only-change-me-0000": a valid Fernet key that says what it is.
DEV_SECRETS_KEY = "bGVhZGZsb3ctZGV2LW9ubHktY2hhbmdlLW1lLTAwMDA="


class SecretNotReadable(Exception):
    """A stored secret that none of the configured keys decrypts (wrong or missing key)."""


def valid_key(key: str) -> str:
    """``key`` if it is a Fernet key (32 url-safe base64 bytes), else ValueError."""
    try:
        Fernet(key.encode())
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "must be a Fernet key: 32 random bytes, url-safe base64 (generate one with "
            "python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc
    return key


class SecretBox:
    """Encrypts with the current key; decrypts with the current or any old key."""

    def __init__(self, current: str, old: Sequence[str] = ()) -> None:
        self._current = Fernet(current.encode())
        self._all = MultiFernet([self._current, *(Fernet(k.encode()) for k in old)])

    def seal(self, secret: str) -> str:
        return self._all.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._all.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SecretNotReadable(
                "a webhook secret is not readable with LEADFLOW_SECRETS_KEY or "
                "LEADFLOW_SECRETS_OLD_KEYS"
            ) from exc

    def under_current_key(self, sealed: str) -> bool:
        try:
            self._current.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True

    def reseal(self, sealed: str) -> str:
        """``sealed`` re-encrypted with the current key."""
        try:
            return self._all.rotate(sealed.encode()).decode()
        except InvalidToken as exc:
            raise SecretNotReadable("cannot re-encrypt: no configured key reads it") from exc


def is_plaintext(stored: str) -> bool:
    """A secret stored before encryption at rest (``whsec_…``); Fernet tokens never are."""
    return stored.startswith(SECRET_PREFIX)


# --- migrations and start-up ----------------------------------------------------------------

# The box of the app being started: its migrations run in the same process, before any
# request, and must use the keys the app was configured with.
_migration_box: SecretBox | None = None


def use_for_migrations(box: SecretBox) -> None:
    global _migration_box
    _migration_box = box


def migration_box() -> SecretBox:
    """The started app's box, or one from the environment (a migration run on its own)."""
    if _migration_box is not None:
        return _migration_box
    from leadflow_webhooks.settings import WebhooksSettings

    return WebhooksSettings().secret_box()


# The columns as the migration found them (not the ORM model, which may change later).
_subscriptions = table("subscriptions", column("id", String), column("secret", String))


def encrypt_plaintext_rows(connection: Connection, box: SecretBox) -> int:
    """The data migration: every plaintext secret in ``subscriptions`` encrypted in place."""
    return _rewrite(connection, is_plaintext, box.seal)


def decrypt_rows(connection: Connection, box: SecretBox) -> int:
    """The migration's downgrade: secrets back in plaintext, as the schema before it had."""
    return _rewrite(connection, lambda stored: not is_plaintext(stored), box.open)


def _rewrite(
    connection: Connection, wanted: Callable[[str], bool], change: Callable[[str], str]
) -> int:
    subs = _subscriptions.c
    rows = connection.execute(select(subs.id, subs.secret)).all()
    changed = 0
    for row in rows:
        if wanted(row.secret):
            connection.execute(
                update(_subscriptions).where(subs.id == row.id).values(secret=change(row.secret))
            )
            changed += 1
    return changed


async def reseal_under_current_key(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every secret not yet under the current key (after a key rotation)."""
    subscriptions = (await session.scalars(select(Subscription))).all()
    changed = 0
    for subscription in subscriptions:
        stored = subscription.secret
        if is_plaintext(stored):
            subscription.secret = box.seal(stored)
        elif not box.under_current_key(stored):
            subscription.secret = box.reseal(stored)
        else:
            continue
        changed += 1
    return changed
