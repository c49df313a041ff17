"""Signing secrets at rest: encrypted in the database, read by the signer, rotated, migrated."""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from cryptography.fernet import Fernet
from pydantic import ValidationError
from sqlalchemy import create_engine, insert, text

import leadflow_webhooks
from leadflow_shared.events import LeadCaptured
from leadflow_shared.ids import new_id, utcnow
from leadflow_shared.settings import DEV_JWT_SECRET
from leadflow_shared.testing import deliver, running_service
from leadflow_webhooks import secret_box
from leadflow_webhooks.main import create_app
from leadflow_webhooks.models import Subscription
from leadflow_webhooks.secret_box import DEV_SECRETS_KEY, SecretBox, SecretNotReadable
from leadflow_webhooks.settings import WebhooksSettings
from leadflow_webhooks.testing import Receiver, register, settled

# The revision before the data migration, and the data migration.
BEFORE_ENCRYPTION = "b0a1e7b40006"
ENCRYPTION = "940f3e081576"


def captured(lead_id: str) -> LeadCaptured:
    return LeadCaptured(lead_id=lead_id, email="ann@example.com", captured_at=utcnow())


def _verifies(secret: str, headers: dict[str, str], body: bytes) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s, expected) for s in headers["webhook-signature"].split())


def _stored_secrets(db_file: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT secret FROM subscriptions"))]
    finally:
        engine.dispose()


def _alembic(db_file: Path) -> Config:
    cfg = Config()
    location = Path(leadflow_webhooks.__file__).parent / "migrations"
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("sqlalchemy.url", f"sqlite:///{db_file}")
    return cfg


async def test_the_column_holds_ciphertext_and_the_signer_reads_it(
    tmp_path: Path, receiver: Receiver
) -> None:
    key = Fernet.generate_key().decode()
    async with running_service(
        create_app, WebhooksSettings, tmp_path, allow_private_targets=True, secrets_key=key
    ) as (client, runtime):
        sub = await register(client, receiver.url, ["lead.captured"])
        plaintext = sub["secret"]
        assert plaintext.startswith("whsec_")
        await deliver(runtime, captured(new_id()))
        [delivery] = await settled(client, sub["id"])
        assert delivery["status"] == "succeeded"
        [got] = receiver.received
        assert _verifies(plaintext, got.headers, got.body)
    [stored] = _stored_secrets(tmp_path / "service.sqlite3")
    key_part = plaintext.removeprefix("whsec_")
    assert plaintext not in stored and key_part not in stored
    assert not stored.startswith("whsec_")
    assert SecretBox(key).open(stored) == plaintext
    with pytest.raises(SecretNotReadable):
        SecretBox(Fernet.generate_key().decode()).open(stored)


async def test_a_rotated_key_still_signs_and_secrets_move_to_the_new_key(
    tmp_path: Path, receiver: Receiver
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    async with running_service(
        create_app, WebhooksSettings, tmp_path, allow_private_targets=True, secrets_key=old
    ) as (client, _runtime):
        sub = await register(client, receiver.url, ["lead.captured"])
    async with running_service(
        create_app,
        WebhooksSettings,
        tmp_path,
        allow_private_targets=True,
        secrets_key=new,
        secrets_old_keys=[old],
    ) as (client, runtime):
        # Re-encrypted at start-up: the new key alone reads it now.
        [stored] = _stored_secrets(tmp_path / "service.sqlite3")
        assert SecretBox(new).open(stored) == sub["secret"]
        await deliver(runtime, captured(new_id()))
        [delivery] = await settled(client, sub["id"])
        assert delivery["status"] == "succeeded"
        [got] = receiver.received
        assert _verifies(sub["secret"], got.headers, got.body)


def test_the_data_migration_encrypts_plaintext_rows_and_the_downgrade_restores_them(
    tmp_path: Path,
) -> None:
    db_file = tmp_path / "webhooks.sqlite3"
    cfg = _alembic(db_file)
    command.upgrade(cfg, BEFORE_ENCRYPTION)
    plaintext = "whsec_" + base64.b64encode(b"k" * 32).decode()
    engine = create_engine(f"sqlite:///{db_file}")
    with engine.begin() as conn:
        conn.execute(
            insert(Subscription).values(
                id="sub-1",
                owner="crm",
                url="https://crm.example/hooks",
                event_types=["*"],
                secret=plaintext,
                active=True,
                created_at=utcnow(),
            )
        )
    engine.dispose()
    key = Fernet.generate_key().decode()
    box = SecretBox(key)
    previous = secret_box._migration_box
    secret_box.use_for_migrations(box)
    try:
        command.upgrade(cfg, ENCRYPTION)
        [stored] = _stored_secrets(db_file)
        assert stored != plaintext and "whsec_" not in stored
        assert box.open(stored) == plaintext
        # Running it again (another replica) changes nothing: encrypted rows are left alone.
        engine = create_engine(f"sqlite:///{db_file}")
        with engine.begin() as conn:
            assert secret_box.encrypt_plaintext_rows(conn, box) == 0
        engine.dispose()
        command.downgrade(cfg, BEFORE_ENCRYPTION)
        assert _stored_secrets(db_file) == [plaintext]
    finally:
        secret_box._migration_box = previous


def test_settings_refuse_the_dev_key_outside_development_and_bad_keys() -> None:
    base: dict[str, Any] = {"jwt_secret": "s" * 40, "environment": "production"}
    with pytest.raises(ValidationError, match="LEADFLOW_SECRETS_KEY is the development"):
        WebhooksSettings(**base)
    real = Fernet.generate_key().decode()
    assert WebhooksSettings(**base, secrets_key=real).secrets_key == real
    with pytest.raises(ValidationError, match="Fernet key"):
        WebhooksSettings(jwt_secret=DEV_JWT_SECRET, secrets_key="too-short")
    with pytest.raises(ValidationError, match="Fernet key"):
        WebhooksSettings(jwt_secret=DEV_JWT_SECRET, secrets_old_keys=["nope"])
    assert WebhooksSettings().secrets_key == DEV_SECRETS_KEY


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    current, old1, old2 = (Fernet.generate_key().decode() for _ in range(3))
    monkeypatch.setenv("LEADFLOW_SECRETS_KEY", current)
    monkeypatch.setenv("LEADFLOW_SECRETS_OLD_KEYS", f"{old1},{old2}")
    settings = WebhooksSettings()
    assert settings.secrets_key == current and settings.secrets_old_keys == [old1, old2]
    sealed_by_old = SecretBox(old2).seal("whsec_x")
    assert settings.secret_box().open(sealed_by_old) == "whsec_x"
