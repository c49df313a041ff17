"""The migration that introduced per-rep counters fills them from the history it finds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import leadflow_routing
from leadflow_routing.models import Decision, RoutedLead
from leadflow_shared.db import Database, UtcDateTime
from leadflow_shared.ids import new_id

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
BEFORE_COUNTERS = "7cdf576de1bf"
EVENING = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
MORNING = datetime(2026, 11, 27, 0, 10, tzinfo=UTC)
OLD_ROTATION = sa.table(
    "rotation",
    sa.column("pool", sa.String()),
    sa.column("rep_id", sa.String()),
    sa.column("assigned_count", sa.Integer()),
    sa.column("last_assigned_at", UtcDateTime()),
)


async def _migrate(db: Database, revision: str, *, down: bool = False) -> None:
    cfg = Config()
    cfg.set_main_option(
        "script_location", str(Path(leadflow_routing.__file__).parent / "migrations")
    )

    def run(connection: sa.Connection) -> None:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


def _lead(lead_id: str, status: str, **owners: str) -> dict[str, Any]:
    return {
        "id": lead_id,
        "profile": {},
        "profile_known": True,
        "mql": True,
        "status": status,
        "updated_at": MORNING,
        "erased": False,
        **{role: owners.get(role) for role in ("sdr", "ae", "am")},
    }


def _decision(kind: str, owner: str | None, at: datetime) -> dict[str, Any]:
    return {
        "id": new_id(),
        "lead_id": "l1",
        "kind": kind,
        "role": "sdr",
        "owner": owner,
        "rule": "na",
        "reason": "test",
        "candidates": [],
        "skipped": {},
        "at": at,
    }


@BOTH
async def test_migration_backfills_counters_from_history(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _migrate(db, BEFORE_COUNTERS)
        async with db.engine.begin() as conn:
            await conn.execute(
                sa.insert(RoutedLead),
                [
                    _lead("l1", "assigned", sdr="ana"),
                    _lead("l2", "accepted", sdr="ana"),
                    _lead("l3", "qualified", sdr="ben", ae="nora"),
                    _lead("l4", "disqualified", sdr="ben"),
                    _lead("l5", "won", sdr="ben", ae="nora", am="alex"),
                ],
            )
            await conn.execute(
                sa.insert(Decision),
                [
                    _decision("assigned", "ana", EVENING),
                    _decision("assigned", "ana", MORNING),
                    _decision("reassigned", "ana", MORNING.replace(minute=20)),
                    _decision("assigned", "ben", MORNING),
                    _decision("accepted", "ben", MORNING.replace(minute=30)),
                    _decision("waiting", None, MORNING),
                ],
            )
            await conn.execute(
                sa.insert(OLD_ROTATION),
                [
                    {
                        "pool": "sdr:na",
                        "rep_id": "ana",
                        "assigned_count": 3,
                        "last_assigned_at": MORNING,
                    },
                    {
                        "pool": "sdr:na",
                        "rep_id": "ben",
                        "assigned_count": 1,
                        "last_assigned_at": MORNING,
                    },
                ],
            )

        await _migrate(db, "head")
        async with db.engine.begin() as conn:
            counters = {
                (row.kind, row.scope, row.rep_id): (row.value, row.last_at)
                for row in await conn.execute(sa.text("SELECT * FROM rep_counters"))
            }
            versions = (await conn.execute(sa.text("SELECT * FROM config_version"))).all()
        assert {key: value for key, (value, _) in counters.items()} == {
            ("rotation", "sdr:na", "ana"): 3,
            ("rotation", "sdr:na", "ben"): 1,
            ("assigned_on", "2026-11-26", "ana"): 1,
            ("assigned_on", "2026-11-27", "ana"): 2,
            ("assigned_on", "2026-11-27", "ben"): 1,
            ("open", "sdr", "ana"): 2,
            ("open", "ae", "nora"): 1,
            ("open", "am", "alex"): 1,
        }
        last_rotation = counters[("rotation", "sdr:na", "ana")][1]
        assert last_rotation is not None
        assert str(last_rotation).startswith("2026-11-27 00:10")
        assert len(versions) == 1 and versions[0].id == 1 and versions[0].version

        # And back: the rotation table is restored from the counters.
        await _migrate(db, BEFORE_COUNTERS, down=True)
        async with db.engine.begin() as conn:
            rows = await conn.execute(sa.select(OLD_ROTATION).order_by(OLD_ROTATION.c.rep_id))
            assert [(r.rep_id, r.assigned_count) for r in rows] == [("ana", 3), ("ben", 1)]
    finally:
        await db.dispose()
