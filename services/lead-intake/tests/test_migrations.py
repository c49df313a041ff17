"""lead-intake's migrations: the schema they build is the models' one, and the
normalisation migration re-keys known leads without merging any behind anyone's back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from leadflow_intake.models import Base
from leadflow_shared.migrations import _config


def test_the_normalisation_migration_rekeys_known_leads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'intake.sqlite3'}"
    cfg = _config("leadflow_intake")
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "f1e1d5000001")
    engine = create_engine(url)
    now = datetime(2026, 11, 1, tzinfo=UTC).isoformat()
    rows = [
        ("1", "Jane.Doe+promo@gmail.com", "jane.doe+promo@gmail.com"),
        ("2", "janedoe@gmail.com", "janedoe@gmail.com"),  # the folded key is taken
        ("3", "Bo+x@Acme.com", "bo+x@acme.com"),
        ("4", "c.d@googlemail.com", "c.d@googlemail.com"),
    ]
    with engine.begin() as conn:
        for lead_id, email, key in rows:
            conn.execute(
                text(
                    "INSERT INTO leads (id, email, email_normalized, utm, consent_marketing,"
                    " custom, created_at, updated_at) VALUES (:id, :email, :key, '{}', 0, '{}',"
                    " :now, :now)"
                ),
                {"id": lead_id, "email": email, "key": key, "now": now},
            )
    command.upgrade(cfg, "head")
    with engine.begin() as conn:
        keys: dict[str, str] = {
            row.id: row.email_normalized
            for row in conn.execute(text("SELECT id, email_normalized FROM leads"))
        }
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert keys == {
        "1": "jane.doe+promo@gmail.com",  # would collide with lead 2: left as it was
        "2": "janedoe@gmail.com",
        "3": "bo@acme.com",
        "4": "cd@gmail.com",
    }
    assert diff == [], diff
